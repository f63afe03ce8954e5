// attnscope: with no arguments, the desktop window (or, in a build without the GUI, a short CLI demo);
// otherwise a subcommand (see `attnscope --help`).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "bench.h"
#include "engine.h"
#include "cli.h"

namespace attnscope {
int run_demo();
}

// LibTorch's large tensor buffers make glibc's allocator return memory to the OS and fault it back in (measured:
// ~45% of training time); jemalloc with decay disabled halves it. Re-exec once with it preloaded when present.
static void prefer_jemalloc(char** argv) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  (void)argv;  // sanitizer builds keep their own allocator
  return;
#endif
  const char* lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  if (std::getenv("ATTNSCOPE_NO_JEMALLOC") || access(lib, R_OK) != 0) return;
  const char* pre = std::getenv("LD_PRELOAD");
  if (pre && std::strstr(pre, "jemalloc")) return;
  setenv("ATTNSCOPE_NO_JEMALLOC", "1", 1);  // never loop
  setenv("LD_PRELOAD", lib, 1);
  if (!std::getenv("MALLOC_CONF")) setenv("MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1", 1);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  execv(self, argv);  // returns only on failure: carry on with the default allocator
}

// Output that never reached standard output (a full disk, a closed pipe, /dev/full) is an error, not a success.
static int check_stdout(int rc) {
  std::cout.flush();
  errno = 0;
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout) || std::cout.fail();
  if (failed && rc == 0) {
    // errno is known when the bytes were still buffered; an earlier failed flush left only the error flag
    std::fprintf(stderr, "attnscope: error: cannot write to standard output%s%s\n", errno ? ": " : "",
                 errno ? std::strerror(errno) : " (disk full or closed?)");
    return 1;
  }
  return rc;
}

int main(int argc, char** argv) {
  const bool bench_child = argc >= 2 && std::string(argv[1]) == "__bench_child";
  // `bench --interactive` measures the window's recompute, so it keeps the window's allocator (glibc, below).
  bool interactive = false;
  for (int i = 2; i < argc; ++i) interactive = interactive || std::string(argv[i]) == "--interactive";
  if (argc >= 2 &&
      (std::string(argv[1]) == "train" || (std::string(argv[1]) == "bench" && !interactive) || bench_child))
    prefer_jemalloc(argv);
  attnscope::keep_freed_buffers();  // glibc: big freed buffers reused, not faulted in afresh (engine.h)
  // one measurement of `bench`, in a process of its own (bench.h: bench_children_exec; not a subcommand)
  if (bench_child) return attnscope::bench_child_main(std::vector<std::string>(argv + 2, argv + argc));
  if (argc <= 1) {
#if ATTNSCOPE_GUI
    char gui[] = "gui";  // no arguments: the window on the bundled model
    char* args[] = {argv[0], gui, nullptr};
    return check_stdout(attnscope::run_cli(2, args));
#else
    return check_stdout(attnscope::run_demo());
#endif
  }
  return check_stdout(attnscope::run_cli(argc, argv));
}
