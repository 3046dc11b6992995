// C++ allocation through operator new/delete (which call malloc/free): raw new/delete of objects
// and arrays, std::vector, std::string, std::map, std::unordered_map, std::list, shared_ptr and
// unique_ptr, and a few threads. Prints deterministic results; the test compares them with the
// same program run without libgoalloc.so and with the values computed here independently.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Node {
  std::uint64_t key;
  std::string name;
  std::vector<int> values;
  Node *next;
  Node(std::uint64_t k, std::string n) : key(k), name(std::move(n)), values(k % 17, int(k)), next(nullptr) {}
};

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

std::uint64_t hashString(const std::string &s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

int failures = 0;

void expect(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "cpp: check failed: %s\n", what);
    failures++;
  }
}

// Linked list of heap nodes, built and torn down several times (new/delete).
std::uint64_t nodes() {
  std::uint64_t h = 0;
  for (int round = 0; round < 5; round++) {
    Node *head = nullptr;
    for (std::uint64_t i = 0; i < 20000; i++) {
      Node *n = new Node(i * 7 + round, "node-" + std::to_string(i));
      n->next = head;
      head = n;
    }
    std::uint64_t count = 0;
    while (head) {
      Node *n = head;
      head = n->next;
      expect(n->values.size() == n->key % 17, "node values size");
      h = mix(h, n->key + n->values.size() + hashString(n->name));
      count++;
      delete n;
    }
    expect(count == 20000, "node count");
  }
  // Arrays of every size from 1 to 2000 (operator new[]/delete[]).
  for (int n = 1; n <= 2000; n++) {
    auto *a = new std::uint32_t[n];
    for (int i = 0; i < n; i++) a[i] = std::uint32_t(i * n);
    std::uint64_t s = 0;
    for (int i = 0; i < n; i++) s += a[i];
    expect(s == std::uint64_t(n) * std::uint64_t(n) * std::uint64_t(n - 1) / 2, "array sum");
    h = mix(h, s);
    delete[] a;
  }
  return h;
}

// Vectors that grow by doubling, shrink_to_fit, and nested vectors.
std::uint64_t vectors() {
  std::uint64_t h = 0;
  for (int round = 0; round < 20; round++) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 0; i < 10000; i++) v.push_back(i * i + round);
    std::uint64_t s = 0;
    for (auto x : v) s += x;
    h = mix(h, s);
    v.resize(100);
    v.shrink_to_fit();
    h = mix(h, v.capacity() >= 100 ? v.back() : 0);
  }
  std::vector<std::vector<int>> grid(300);
  for (int i = 0; i < 300; i++)
    for (int j = 0; j <= i; j++) grid[i].push_back(i * j);
  std::uint64_t total = 0;
  for (auto &row : grid)
    for (int x : row) total += std::uint64_t(x);
  expect(total == 1010238775ull, "grid total");  // sum over i<300 of i * i(i+1)/2
  return mix(h, total);
}

// Strings: concatenation, substrings, many short (SSO) and long ones.
std::uint64_t strings() {
  std::uint64_t h = 0;
  std::string big;
  for (int i = 0; i < 50000; i++) {
    std::string s = "item" + std::to_string(i);
    if (i % 3 == 0) s += std::string(size_t(i % 200), char('a' + i % 26));
    big += s.substr(0, 6);
    h = mix(h, hashString(s));
  }
  expect(big.size() > 200000, "big string size");
  return mix(h, hashString(big));
}

// Ordered and unordered maps: insert, update, erase half, iterate.
std::uint64_t maps(std::size_t *finalSize) {
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<std::uint64_t, std::string> u;
  for (int i = 0; i < 60000; i++) {
    std::string key = "k" + std::to_string((i * 7919) % 30000);
    m[key].push_back(i);
    u[std::uint64_t(i) * 2654435761u] = key;
  }
  expect(m.size() == 30000, "map size");
  expect(u.size() == 60000, "unordered_map size");
  for (auto it = m.begin(); it != m.end();) {
    if (it->second.front() % 2 == 0) it = m.erase(it);
    else ++it;
  }
  for (int i = 0; i < 60000; i += 2) u.erase(std::uint64_t(i) * 2654435761u);
  expect(u.size() == 30000, "unordered_map size after erase");
  std::uint64_t h = 0;
  for (auto &kv : m) h = mix(h, hashString(kv.first) + kv.second.size() + std::uint64_t(kv.second.back()));
  *finalSize = m.size();
  std::list<std::string> l;
  for (auto &kv : u) l.push_back(kv.second);
  l.sort();
  for (auto &s : l) h = mix(h, hashString(s));
  return h;
}

// Smart pointers shared between threads; every thread builds and drops its own containers.
std::uint64_t threads() {
  std::vector<std::shared_ptr<std::vector<int>>> shared;
  for (int i = 0; i < 1000; i++) shared.push_back(std::make_shared<std::vector<int>>(i % 50, i));
  std::uint64_t results[4] = {0, 0, 0, 0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; t++) {
    pool.emplace_back([t, &shared, &results] {
      std::uint64_t h = 0;
      std::vector<std::shared_ptr<std::vector<int>>> mine(shared.begin(), shared.end());
      for (int i = 0; i < 20000; i++) {
        auto p = std::make_unique<std::string>(std::to_string(i * (t + 1)));
        std::map<int, std::string> small{{i, *p}, {i + 1, *p + "x"}};
        h = mix(h, hashString(small.rbegin()->second) + mine[std::size_t(i) % mine.size()]->size());
      }
      results[t] = h;
    });
  }
  for (auto &th : pool) th.join();
  std::uint64_t h = 0;
  for (auto r : results) h = mix(h, r);
  expect(shared[999].use_count() == 1, "shared_ptr use count back to 1");
  return h;
}

}  // namespace

int main() {
  std::uint64_t a = nodes();
  std::uint64_t b = vectors();
  std::uint64_t c = strings();
  std::size_t mapSize = 0;
  std::uint64_t d = maps(&mapSize);
  std::uint64_t e = threads();
  std::printf("nodes %016llx\n", (unsigned long long)a);
  std::printf("vectors %016llx\n", (unsigned long long)b);
  std::printf("strings %016llx\n", (unsigned long long)c);
  std::printf("maps %016llx size %zu\n", (unsigned long long)d, mapSize);
  std::printf("threads %016llx\n", (unsigned long long)e);
  std::printf("cpp: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
