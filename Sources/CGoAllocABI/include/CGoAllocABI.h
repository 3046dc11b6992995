// CGoAllocABI: the libc allocator names of libgoalloc.so (see abi.c). No declarations needed.
