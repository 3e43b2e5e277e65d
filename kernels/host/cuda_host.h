// cuda_host.h: CUDA's execution model on the host, so that the very kernels of kernels/*.cu run, compiled by g++,
// where there is no GPU (the mock CUDA device, tinygrad_llm/engine/cuda/mock/). Test infrastructure: it shows that
// a kernel computes the right numbers under CUDA's rules, never how fast it is on a GPU.
//
// The model, and what each part of CUDA becomes:
//   thread      a fiber (its own stack, ucontext), so code between barriers really runs thread after thread;
//               threadIdx / blockIdx / blockDim / gridDim are set by the scheduler before it resumes a fiber
//   block       its threads' fibers, run by one scheduler until all have returned; blocks run one after another
//   __shared__  a static variable in the section "tl_mock_shared": one copy, the running block's; it is filled
//               with 0xFF bytes (NaN as float) before every block, so a read before any write shows
//   __syncthreads()     the fiber parks; when every thread of the block has parked, all go on. If some threads of
//                       the block have returned instead, the launch fails naming the kernel and the block: CUDA
//                       would hang or silently misbehave
//   __shfl_xor_sync()   each lane leaves its value in the warp's exchange slots, the warp meets, each lane reads its
//                       partner's, the warp meets again; every lane of the mask must take part
//   atomicAdd   a plain read-modify-write: one host thread runs all fibers, so nothing can come in between
//   a bad memory access  SIGSEGV / SIGBUS are caught for the launch; it fails naming the kernel, block and thread
//   a kernel that never ends  a timer (SIGALRM) fails the launch after the timeout Python gives
// The order of the threads is fixed (thread 0 first) and can be reversed (launch option), which turns a missing
// barrier into wrong numbers deterministically: a thread reads shared memory its neighbours have not written yet,
// or overwrites what they have not read yet.
#pragma once

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

// ---------------------------------------------------------------- CUDA's vocabulary

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)   // the Python side reads the bound from the source and checks block sizes
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define __shared__ static __attribute__((section("tl_mock_shared")))

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint4 { unsigned int x, y, z, w; };
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, sizeof i); return i; }

// ---------------------------------------------------------------- switching between fibers
// On x86-64 a switch saves the callee-saved registers and the FP control words on the fiber's own stack and swaps
// stack pointers (~20 ns); elsewhere it is ucontext's swapcontext (which also makes a system call per switch).
#if defined(__x86_64__)
extern "C" void tl_mock_switch(void** save_stack_pointer, void* load_stack_pointer);
asm(R"(
    .text
    .globl tl_mock_switch
    .hidden tl_mock_switch
    .type tl_mock_switch, @function
tl_mock_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tl_mock_switch, .-tl_mock_switch
)");
#endif

namespace tl_mock {

constexpr int WARP = 32;
constexpr size_t STACK_BYTES = 256 * 1024;   // per fiber; a guard page below it turns an overflow into a SIGSEGV

enum class State { runnable, at_block_barrier, at_warp_barrier, done };

struct Fiber {
#if defined(__x86_64__)
    void* stack_pointer = nullptr;
#else
    ucontext_t context;
#endif
    State state = State::runnable;
    dim3 thread;
    unsigned int warp_mask = 0;   // the mask of the warp-synchronous call it waits in
};

// The launch as Python describes it (tinygrad_llm/engine/cuda/mock/host_kernels.py, class Launch)
struct Launch {
    unsigned int grid[3];
    unsigned int block[3];
    unsigned long long dynamic_shared_bytes;
    int reverse_order;            // run a block's threads last to first
    double timeout_seconds;       // a launch still running after this long fails (a kernel that never ends)
    const char* kernel_name;
};

struct Runtime {
    dim3 thread_index, block_index, block_dim, grid_dim;
    std::vector<Fiber> fibers;
    std::vector<void*> stacks;
#if defined(__x86_64__)
    void* scheduler = nullptr;
#else
    ucontext_t scheduler;
#endif
    int current = -1;
    unsigned long long warp_exchange[1024 / WARP][WARP];
    std::vector<unsigned char> dynamic_shared;
    sigjmp_buf failure_jump;
    std::string error;
    const char* kernel_name = "";
};

inline Runtime runtime;
inline char error_text[4096];

}  // namespace tl_mock

inline const dim3& threadIdx = tl_mock::runtime.thread_index;
inline const dim3& blockIdx = tl_mock::runtime.block_index;
inline const dim3& blockDim = tl_mock::runtime.block_dim;
inline const dim3& gridDim = tl_mock::runtime.grid_dim;

// the shared section's bounds, provided by the linker (weak: a kernel file may declare no static shared memory)
extern "C" char __start_tl_mock_shared[] __attribute__((weak));
extern "C" char __stop_tl_mock_shared[] __attribute__((weak));

namespace tl_mock {

inline std::string describe_thread(int index) {
    const dim3& b = runtime.block_index;
    const dim3& t = runtime.fibers[index].thread;
    char text[160];
    std::snprintf(text, sizeof text, "block (%u, %u, %u), thread (%u, %u, %u)", b.x, b.y, b.z, t.x, t.y, t.z);
    return text;
}

// Ends the launch with an error: from a fiber, a signal handler or the scheduler alike.
[[noreturn]] inline void fail(const std::string& what) {
    runtime.error = std::string(runtime.kernel_name) + ": " + what;
    siglongjmp(runtime.failure_jump, 1);
}

// The calling fiber parks in `state` and hands control back to the scheduler.
inline void park(State state, unsigned int warp_mask = 0) {
    Fiber& me = runtime.fibers[runtime.current];
    me.state = state;
    me.warp_mask = warp_mask;
#if defined(__x86_64__)
    tl_mock_switch(&me.stack_pointer, runtime.scheduler);
#else
    swapcontext(&me.context, &runtime.scheduler);
#endif
}

inline int lane() { return (int)(runtime.current % WARP); }
inline int warp() { return (int)(runtime.current / WARP); }

// Every lane of `mask` meets here: a warp-synchronous operation (a shuffle, a WMMA call).
inline void warp_barrier(unsigned int mask) {
    if (!(mask >> lane() & 1u)) fail("a warp-synchronous call from lane " + std::to_string(lane()) +
                                     ", which is not in its own mask (" + describe_thread(runtime.current) + ")");
    park(State::at_warp_barrier, mask);
}

template <class T>
T shuffle_xor(unsigned int mask, T value, int lane_mask, int width) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "a shuffle moves at most 8 bytes");
    if (width != WARP) fail("__shfl_xor_sync with a width other than 32 is not modelled");
    unsigned long long bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    runtime.warp_exchange[warp()][lane()] = bits;
    warp_barrier(mask);                                      // every lane has left its value
    const int partner = lane() ^ lane_mask;
    if (partner >= WARP || !(mask >> partner & 1u))
        fail("__shfl_xor_sync reads lane " + std::to_string(partner) + ", outside the mask (" +
             describe_thread(runtime.current) + ")");
    bits = runtime.warp_exchange[warp()][partner];
    warp_barrier(mask);                                      // every lane has read before the slots are reused
    T result;
    std::memcpy(&result, &bits, sizeof(T));
    return result;
}

inline std::function<void()>* kernel_body = nullptr;

// Where every fiber starts: the kernel, then back to the scheduler for good.
inline void fiber_entry() {
    (*kernel_body)();
    runtime.fibers[runtime.current].state = State::done;
#if defined(__x86_64__)
    void* finished;
    tl_mock_switch(&finished, runtime.scheduler);   // never resumed
    __builtin_unreachable();
#endif
    // with ucontext, returning resumes uc_link: the scheduler
}

inline void* new_stack() {
    // one guard page below the stack: running past its end is a SIGSEGV, caught and reported
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* memory = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    mprotect(memory, page, PROT_NONE);
    return memory;
}

inline void poison_shared_memory() {
    if (__start_tl_mock_shared && __stop_tl_mock_shared)
        std::memset(__start_tl_mock_shared, 0xFF, (size_t)(__stop_tl_mock_shared - __start_tl_mock_shared));
    std::memset(runtime.dynamic_shared.data(), 0xFF, runtime.dynamic_shared.size());
}

// Releases whatever barrier every participant has reached; fails on a barrier that can no longer be reached.
inline void release_barriers() {
    const int n = (int)runtime.fibers.size();
    int done = 0, at_block = 0;
    for (const Fiber& f : runtime.fibers) {
        done += f.state == State::done;
        at_block += f.state == State::at_block_barrier;
    }
    bool released = false;
    // warp barriers: a warp goes on when every lane of the mask waits in a warp-synchronous call
    for (int w = 0; w * WARP < n; ++w) {
        const int first = w * WARP, lanes = std::min(WARP, n - first);
        int waiting = 0;
        unsigned int mask = 0;
        for (int l = 0; l < lanes; ++l)
            if (runtime.fibers[first + l].state == State::at_warp_barrier) {
                ++waiting;
                mask = runtime.fibers[first + l].warp_mask;
            }
        if (waiting == 0) continue;
        int needed = 0;
        for (int l = 0; l < WARP; ++l) needed += mask >> l & 1u;
        bool all_there = true;
        for (int l = 0; l < WARP; ++l) {
            if (!(mask >> l & 1u)) continue;
            if (l >= lanes) fail("a warp-synchronous call names lane " + std::to_string(l) + " of warp " +
                                 std::to_string(w) + ", which does not exist (" + std::to_string(lanes) + " lanes)");
            const Fiber& f = runtime.fibers[first + l];
            if (f.state == State::done)
                fail("a warp-synchronous call (shuffle or WMMA) in warp " + std::to_string(w) + " waits for lane " +
                     std::to_string(l) + ", which has returned (" + describe_thread(first + l) + ")");
            if (f.state != State::at_warp_barrier) all_there = false;
        }
        if (all_there && waiting == needed) {
            for (int l = 0; l < lanes; ++l)
                if (runtime.fibers[first + l].state == State::at_warp_barrier)
                    runtime.fibers[first + l].state = State::runnable;
            released = true;
        }
    }
    if (released) return;
    if (at_block > 0 && at_block + done == n) {
        if (done > 0) {
            int first_done = 0;
            while (runtime.fibers[first_done].state != State::done) ++first_done;
            fail("__syncthreads() was reached by " + std::to_string(at_block) + " of the block's " + std::to_string(n) +
                 " threads; the other " + std::to_string(done) + " had returned (first: " +
                 describe_thread(first_done) + "). Every thread of a block must reach each __syncthreads()");
        }
        for (Fiber& f : runtime.fibers) f.state = State::runnable;
        return;
    }
    if (done < n) {
        int waiting_warp = 0;
        for (const Fiber& f : runtime.fibers) waiting_warp += f.state == State::at_warp_barrier;
        fail("deadlock in block: " + std::to_string(at_block) + " threads wait in __syncthreads(), " +
             std::to_string(waiting_warp) + " in a warp-synchronous call whose other lanes never come, " +
             std::to_string(done) + " have returned");
    }
}

inline void run_block(int reverse_order) {
    const int n = (int)runtime.fibers.size();
    poison_shared_memory();
    for (int i = 0; i < n; ++i) {
        Fiber& f = runtime.fibers[i];
        f.state = State::runnable;
        f.thread = dim3(i % runtime.block_dim.x, i / runtime.block_dim.x % runtime.block_dim.y,
                        i / (runtime.block_dim.x * runtime.block_dim.y));
        char* stack = (char*)runtime.stacks[i] + sysconf(_SC_PAGESIZE);
#if defined(__x86_64__)
        // a frame as tl_mock_switch leaves one: FP control words, six registers, then the "return address"
        // fiber_entry, placed so that fiber_entry starts with the stack aligned as after a call
        void** top = (void**)(((uintptr_t)(stack + STACK_BYTES) & ~(uintptr_t)15) - 16);
        top[0] = (void*)&fiber_entry;
        void** frame = top - 7;
        for (int r = 1; r < 7; ++r) frame[r] = nullptr;
        unsigned int control[2] = {0, 0};
        asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(control[0]), "=m"(control[1]));
        std::memcpy(&frame[0], control, sizeof(void*));
        f.stack_pointer = frame;
#else
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = stack;
        f.context.uc_stack.ss_size = STACK_BYTES;
        f.context.uc_link = &runtime.scheduler;
        makecontext(&f.context, fiber_entry, 0);
#endif
    }
    for (;;) {
        bool ran = false;
        for (int k = 0; k < n; ++k) {
            const int i = reverse_order ? n - 1 - k : k;
            if (runtime.fibers[i].state != State::runnable) continue;
            runtime.current = i;
            runtime.thread_index = runtime.fibers[i].thread;
#if defined(__x86_64__)
            tl_mock_switch(&runtime.scheduler, runtime.fibers[i].stack_pointer);
#else
            swapcontext(&runtime.scheduler, &runtime.fibers[i].context);
#endif
            ran = true;
        }
        runtime.current = -1;
        bool all_done = true;
        for (const Fiber& f : runtime.fibers) all_done &= f.state == State::done;
        if (all_done) return;
        if (!ran) fail("no thread could run (internal error of the mock)");
        release_barriers();
    }
}

inline double timeout_seconds = 0;

inline void on_fault(int signal, siginfo_t* info, void*) {
    char text[200];
    if (signal == SIGALRM)
        std::snprintf(text, sizeof text, "still running after %g s (a loop that never ends?)", timeout_seconds);
    else
        std::snprintf(text, sizeof text, "%s at address %p", signal == SIGSEGV ? "illegal memory access (SIGSEGV)"
                      : signal == SIGBUS ? "misaligned or illegal memory access (SIGBUS)" : "arithmetic fault (SIGFPE)",
                      info->si_addr);
    std::string where = runtime.current >= 0 ? " in " + describe_thread(runtime.current) : " in the scheduler";
    runtime.error = std::string(runtime.kernel_name) + ": " + text + where;
    siglongjmp(runtime.failure_jump, 1);
}

// Runs `body` (the kernel with its arguments) on every thread of every block. Returns 0, or 1 with the reason in
// tl_mock::error_text.
inline int run(const Launch& launch, std::function<void()> body) {
    runtime.kernel_name = launch.kernel_name;
    runtime.error.clear();
    runtime.block_dim = dim3(launch.block[0], launch.block[1], launch.block[2]);
    runtime.grid_dim = dim3(launch.grid[0], launch.grid[1], launch.grid[2]);
    const int n = (int)(launch.block[0] * launch.block[1] * launch.block[2]);
    runtime.fibers.assign(n, Fiber());
    while ((int)runtime.stacks.size() < n) {
        void* stack = new_stack();
        if (!stack) { std::snprintf(error_text, sizeof error_text, "cannot allocate fiber stacks"); return 1; }
        runtime.stacks.push_back(stack);
    }
    runtime.dynamic_shared.assign(launch.dynamic_shared_bytes, 0xFF);
    kernel_body = &body;

    static char alternate_stack[64 * 1024];
    stack_t signal_stack{}, old_signal_stack{};
    signal_stack.ss_sp = alternate_stack;
    signal_stack.ss_size = sizeof alternate_stack;
    sigaltstack(&signal_stack, &old_signal_stack);
    struct sigaction action{}, old_segv{}, old_bus{}, old_fpe{}, old_alarm{};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &old_segv);
    sigaction(SIGBUS, &action, &old_bus);
    sigaction(SIGFPE, &action, &old_fpe);
    sigaction(SIGALRM, &action, &old_alarm);
    timeout_seconds = launch.timeout_seconds;
    itimerval timer{}, old_timer{};
    timer.it_value.tv_sec = (time_t)launch.timeout_seconds;
    timer.it_value.tv_usec = (suseconds_t)((launch.timeout_seconds - (double)timer.it_value.tv_sec) * 1e6);
    setitimer(ITIMER_REAL, &timer, &old_timer);

    int status = 0;
    if (sigsetjmp(runtime.failure_jump, 1) == 0) {
        for (unsigned int z = 0; z < launch.grid[2]; ++z)
            for (unsigned int y = 0; y < launch.grid[1]; ++y)
                for (unsigned int x = 0; x < launch.grid[0]; ++x) {
                    runtime.block_index = dim3(x, y, z);
                    run_block(launch.reverse_order);
                }
    } else {
        status = 1;
        std::snprintf(error_text, sizeof error_text, "%s", runtime.error.c_str());
    }
    setitimer(ITIMER_REAL, &old_timer, nullptr);
    sigaction(SIGALRM, &old_alarm, nullptr);
    sigaction(SIGSEGV, &old_segv, nullptr);
    sigaction(SIGBUS, &old_bus, nullptr);
    sigaction(SIGFPE, &old_fpe, nullptr);
    sigaltstack(&old_signal_stack, nullptr);
    runtime.current = -1;
    kernel_body = nullptr;
    return status;
}

template <class T>
T* dynamic_shared() { return reinterpret_cast<T*>(runtime.dynamic_shared.data()); }

}  // namespace tl_mock

// this header is compiled into exactly one translation unit per kernel file: the function is defined once
extern "C" const char* tl_mock_error() { return tl_mock::error_text; }

// ---------------------------------------------------------------- CUDA's device functions

inline void __syncthreads() { tl_mock::park(tl_mock::State::at_block_barrier); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) { tl_mock::warp_barrier(mask); }

template <class T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask, int width = 32) {
    return tl_mock::shuffle_xor(mask, value, lane_mask, width);
}

inline float atomicAdd(float* address, float value) { const float old = *address; *address = old + value; return old; }
inline int atomicAdd(int* address, int value) { const int old = *address; *address = old + value; return old; }
