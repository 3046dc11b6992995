/* noalloc.c: makes no allocation of its own (the stats help says what such a program reports). */
int main(void) { return 0; }
