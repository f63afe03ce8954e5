#pragma once
// Threads for our own CPU kernels (the fused attention kernel, the pooled long-text maps). They do not follow
// LibTorch's intra-op count: LibTorch sizes that from the cores it detects, and on this project's 2-vCPU machines it
// detects 1, while the kernel measured 2x faster on 2 threads (causal T = 4096: 74.9 -> 36.0 ms). Raising LibTorch's
// count instead made every small operator an OpenMP region whose spinning threads fight OpenBLAS's (cached decoding
// fell from 7,700 to 480 tokens/s), so only these kernels' large calls go parallel, on a pool of our own: plain
// threads that sleep on a condition variable between calls (nothing spins), that ThreadSanitizer can follow, and
// that a fork()ed child (the bench's measuring processes) replaces with its own instead of waiting on threads it does
// not have (OpenMP's pool hangs there).
#include <cstdint>
#include <functional>

namespace attnscope {

// The count a large kernel call uses: set_kernel_threads(n) for n >= 1, else (0, the default) the CPUs this process
// may run on (sched_getaffinity).
int64_t kernel_threads();
void set_kernel_threads(int64_t n);

// fn(0), .., fn(total - 1) on the caller's thread and up to threads - 1 of the pool's, items handed out one at a
// time (their costs differ: the last query tiles of a causal mask are the heaviest). One thread, one item, or a pool
// already busy with another caller's items: a plain loop on the caller's thread. The first exception an item throws
// is rethrown here once every thread has stopped taking items.
void parallel_items(int64_t total, int64_t threads, const std::function<void(int64_t)>& fn);

}  // namespace attnscope
