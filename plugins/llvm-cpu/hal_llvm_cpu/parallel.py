"""A native worker pool that runs one dispatch's workgroups on several threads without the GIL.

local-task's Python pool wakes a thread blocked in ``queue.get`` for every dispatch, and on a
dispatch of a millisecond the helper starts late (an idle vCPU's futex wake, then the GIL
hand-off), so the submitter does its tile and waits. Here each helper thread is created by
Python but spends its life inside one ctypes call into :func:`hal_pool_worker`, generated
below with llvmlite and linked through LLJIT like the kernels: between dispatches it spins
briefly on the pool's job word (with ``pause`` on x86), then sleeps in a futex until a job is
posted or the pool stops. A dispatch (``hal_pool_run``, called through ctypes with the GIL
released) publishes the job, wakes sleepers only when there are any, and claims chunks of
workgroups along with the helpers, so a late helper simply claims fewer.

Protocol (every word on its own cache line):

* ``gen`` (i32, the futex word): the id of the last job posted; stop bumps it too.
* ``claim`` (i64): ``job << 32 | next chunk``. A chunk is claimed by compare-and-swap, so a
  helper that read the fields of a finished job can never claim a chunk of the next one: the
  submitter stores the new job's id into ``claim`` before it rewrites the fields (a seqlock
  read: fields, acquire fence, then the swap validates them).
* ``done`` (i32): chunks finished; the submitter waits for all of them (spinning, then in a
  futex on ``done`` with ``waiter`` set, which the helper finishing the last chunk checks).
* ``rc``: the first nonzero return code (compare-and-swap from 0) and its chunk's range.

One submitter at a time per pool (the Python side takes a non-blocking lock; a concurrent
dispatch runs its workgroups itself). Sleeping uses the futex system call on Linux and a
200 us ``usleep`` poll elsewhere.

Placement after idle (Linux): a helper woken from its futex after an idle spell was placed on
the submitter's CPU more often than not (on this 2-vCPU KVM guest), sharing one core with the
submitter while the other idled until the load balancer noticed, milliseconds later: no gain
at all for a dispatch woken after 50 ms of quiet. So the submitter yields once after waking
sleepers (a helper queued behind it runs), and a woken helper that finds itself on the
submitter's CPU (``sched_getcpu``) steps off it by narrowing its affinity for a moment.
Measured here: matmul 1024 after 50 ms idle went from 9.5 to 5.3-5.8 ms (one thread: 8.8),
the 64->64 56x56 conv from 1.74 to 1.28-1.53 ms (one thread: 1.81).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import platform
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

#: How long an idle helper (and a submitter waiting for the last chunk) spins before sleeping:
#: long enough to bridge the gap between the dispatches of one model, short enough that an
#: idle device burns no CPU to speak of.
SPIN_US = 200.0

# Byte offsets in the pool's shared block (one 64-byte line per writer group).
_GEN, _CLAIM, _DONE, _WAITER, _SLEEPERS = 0, 64, 128, 132, 192
_JOB = 256  # fn, bindings, constants, workgroup_count, first, end, chunk, nchunks (8 x i64)
_RC, _ERR_FIRST, _ERR_END = 320, 328, 336
_STOP, _SPIN = 384, 392
_HELPED = 448  # chunks run by helper threads, ever (a statistic: see NativePool.helped)
_SUBMIT_CPU = 512  # the CPU the last submitter ran on when it posted its job (Linux)
_BLOCK_BYTES = 576

_FUTEX = {"x86_64": 202, "aarch64": 98, "riscv64": 98}  # SYS_futex per Linux architecture
_FUTEX_WAIT_PRIVATE, _FUTEX_WAKE_PRIVATE = 128, 129

_RUN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                        ctypes.c_int64)
_WORKER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_SPINFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)

_native_lock = threading.Lock()
_native: Any = None


def _build_ir(arch: str, system: str) -> str:
    from llvmlite import ir
    from llvmlite.ir import instructions

    i32, i64, ptr = ir.IntType(32), ir.IntType(64), ir.PointerType()
    void = ir.VoidType()
    mod = ir.Module(name="hal_pool")

    def c32(v: int) -> ir.Constant:
        return ir.Constant(i32, v)

    def c64(v: int) -> ir.Constant:
        return ir.Constant(i64, v)

    def field(b: ir.IRBuilder, pool: ir.Value, offset: int) -> ir.Value:
        return b.gep(pool, [c64(offset)], source_etype=ir.IntType(8))

    def load(b: ir.IRBuilder, p: ir.Value, t: ir.Type, order: str = "monotonic") -> ir.Value:
        return b.load_atomic(p, order, t.width // 8, typ=t)

    def store(b: ir.IRBuilder, v: ir.Value, p: ir.Value, order: str = "monotonic") -> None:
        # IRBuilder.store_atomic wants a typed pointer; build the instruction directly.
        b._insert(instructions.StoreAtomicInstr(b.block, v, p, order, v.type.width // 8))

    def function(name: str, ret: ir.Type, args: list, internal: bool = False) -> ir.Function:
        fn = ir.Function(mod, ir.FunctionType(ret, args), name=name)
        if internal:
            fn.linkage = "internal"
        fn.attributes.add("nounwind")
        return fn

    if arch == "x86_64":
        pause_fn = function("llvm.x86.sse2.pause", void, [])
    else:
        pause_fn = None

    def pause(b: ir.IRBuilder) -> None:
        if pause_fn is not None:
            b.call(pause_fn, [])

    futex = _FUTEX.get(arch) if system == "Linux" else None
    if futex is not None:
        syscall = ir.Function(mod, ir.FunctionType(i64, [i64], var_arg=True), name="syscall")
    else:
        usleep = ir.Function(mod, ir.FunctionType(i32, [i32]), name="usleep")

    # block(addr, expected): sleep while *addr == expected (may return early; callers loop).
    block_fn = function("hal_pool_block", void, [ptr, i32], internal=True)
    b = ir.IRBuilder(block_fn.append_basic_block())
    addr, expected = block_fn.args
    if futex is not None:
        b.call(syscall, [c64(futex), addr, c32(_FUTEX_WAIT_PRIVATE), expected,
                         ir.Constant(ptr, None), ir.Constant(ptr, None), c32(0)])
    else:
        b.call(usleep, [c32(200)])
    b.ret_void()

    # wake(addr, n): wake up to n threads blocked on addr.
    wake_fn = function("hal_pool_wake", void, [ptr, i32], internal=True)
    b = ir.IRBuilder(wake_fn.append_basic_block())
    if futex is not None:
        addr, n = wake_fn.args
        b.call(syscall, [c64(futex), addr, c32(_FUTEX_WAKE_PRIVATE), n,
                         ir.Constant(ptr, None), ir.Constant(ptr, None), c32(0)])
    b.ret_void()

    entry_t = ir.FunctionType(i32, [ptr, ptr, ptr, i64, i64])

    # move_off(pool, allowed, scratch) (masks: cpu_set_t, 16 x i64): a helper woken from its futex lands, after an idle
    # spell, on the CPU of the thread that woke it more often than not (measured here: the
    # helper and the submitter then share one core while the other idles, for milliseconds,
    # until the load balancer notices). If it finds itself on the submitter's CPU, it steps
    # off: its affinity without this CPU (which migrates it now), then all of it again.
    if futex is not None:
        getcpu = ir.Function(mod, ir.FunctionType(i32, []), name="sched_getcpu")
        setaff = ir.Function(mod, ir.FunctionType(i32, [i32, i64, ptr]),
                             name="sched_setaffinity")
        getaff = ir.Function(mod, ir.FunctionType(i32, [i32, i64, ptr]),
                             name="sched_getaffinity")
        sched_yield = ir.Function(mod, ir.FunctionType(i32, []), name="sched_yield")
        move_fn = function("hal_pool_move_off", void, [ptr, ptr, ptr], internal=True)
        pool, allowed, scratch = move_fn.args
        blocks = {n: move_fn.append_basic_block(n) for n in ("entry", "move", "exit")}
        b = ir.IRBuilder(blocks["entry"])
        cpu = b.call(getcpu, [])
        submitter_cpu = load(b, field(b, pool, _SUBMIT_CPU), i32)
        same = b.and_(b.icmp_signed("==", cpu, submitter_cpu),
                      b.icmp_unsigned("<", cpu, c32(1024)))
        b.cbranch(same, blocks["move"], blocks["exit"])
        b.position_at_end(blocks["move"])
        word = b.zext(b.lshr(cpu, c32(6)), i64)
        bit = b.shl(c64(1), b.zext(b.and_(cpu, c32(63)), i64))
        for k in range(16):
            v = b.load(b.gep(allowed, [c64(k)], source_etype=i64), typ=i64)
            v = b.select(b.icmp_unsigned("==", word, c64(k)), b.and_(v, b.not_(bit)), v)
            b.store(v, b.gep(scratch, [c64(k)], source_etype=i64))
        b.call(setaff, [c32(0), c64(128), scratch])   # fails harmlessly if nothing is left
        b.call(setaff, [c32(0), c64(128), allowed])
        b.branch(blocks["exit"])
        b.position_at_end(blocks["exit"])
        b.ret_void()

    # work(pool, job): claim and run chunks of `job` until none is left or the job is over.
    work_fn = function("hal_pool_work", void, [ptr, i32, ir.IntType(1)], internal=True)
    pool, job, is_helper = work_fn.args
    blocks = {n: work_fn.append_basic_block(n)
              for n in ("entry", "claim", "try", "run", "fail", "record", "count", "tally",
                        "counted", "last", "wake", "exit")}
    b = ir.IRBuilder(blocks["entry"])
    # A typed pointer: llvmlite's call() takes the callee's type from its pointee.
    fn = b.inttoptr(load(b, field(b, pool, _JOB), i64), entry_t.as_pointer())
    bindings, consts, wgc = (b.inttoptr(load(b, field(b, pool, _JOB + 8 * i), i64), ptr)
                             for i in range(1, 4))
    first, end, chunk, nchunks = (load(b, field(b, pool, _JOB + 8 * i), i64)
                                  for i in range(4, 8))
    # Pairs with the submitter's release fence: if any field above came from a later job,
    # the compare-and-swap below sees that job's id in `claim` and fails.
    b.fence("acquire")
    claim_p, done_p, rc_p = field(b, pool, _CLAIM), field(b, pool, _DONE), field(b, pool, _RC)
    b.branch(blocks["claim"])

    b.position_at_end(blocks["claim"])
    w = load(b, claim_p, i64)
    same_job = b.icmp_unsigned("==", b.trunc(b.lshr(w, c64(32)), i32), job)
    idx = b.and_(w, c64(0xFFFFFFFF))
    left = b.icmp_unsigned("<", idx, nchunks)
    b.cbranch(b.and_(same_job, left), blocks["try"], blocks["exit"])

    b.position_at_end(blocks["try"])
    got = b.extract_value(b.cmpxchg(claim_p, w, b.add(w, c64(1)), "acq_rel", "monotonic"), 1)
    b.cbranch(got, blocks["run"], blocks["claim"])

    b.position_at_end(blocks["run"])
    start = b.add(first, b.mul(idx, chunk))
    stop = b.add(start, chunk)
    stop = b.select(b.icmp_signed("<", stop, end), stop, end)
    rc = b.call(fn, [bindings, consts, wgc, start, stop])
    b.cbranch(b.icmp_signed("!=", rc, c32(0)), blocks["fail"], blocks["count"])

    b.position_at_end(blocks["fail"])
    won = b.extract_value(b.cmpxchg(rc_p, c32(0), rc, "seq_cst", "seq_cst"), 1)
    b.cbranch(won, blocks["record"], blocks["count"])

    b.position_at_end(blocks["record"])
    store(b, start, field(b, pool, _ERR_FIRST))
    store(b, stop, field(b, pool, _ERR_END))
    b.branch(blocks["count"])

    b.position_at_end(blocks["count"])
    b.cbranch(is_helper, blocks["tally"], blocks["counted"])

    b.position_at_end(blocks["tally"])
    b.atomic_rmw("add", field(b, pool, _HELPED), c64(1), "monotonic")
    b.branch(blocks["counted"])

    b.position_at_end(blocks["counted"])
    old = b.atomic_rmw("add", done_p, c32(1), "seq_cst")
    is_last = b.icmp_unsigned("==", b.zext(b.add(old, c32(1)), i64), nchunks)
    b.cbranch(is_last, blocks["last"], blocks["claim"])

    b.position_at_end(blocks["last"])
    waiting = load(b, field(b, pool, _WAITER), i32, "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", waiting, c32(0)), blocks["wake"], blocks["claim"])

    b.position_at_end(blocks["wake"])
    b.call(wake_fn, [done_p, c32(1)])
    b.branch(blocks["claim"])

    b.position_at_end(blocks["exit"])
    b.ret_void()

    # run(pool, fn, bindings, constants, workgroup_count, first, end, chunk) -> first rc != 0
    run_fn = function("hal_pool_run", i32, [ptr, ptr, ptr, ptr, ptr, i64, i64, i64])
    pool, fn, bindings, consts, wgc, first, end, chunk = run_fn.args
    blocks = {n: run_fn.append_basic_block(n)
              for n in ("entry", "wake", "work", "spin", "spin_more", "sleep", "block",
                        "finished")}
    b = ir.IRBuilder(blocks["entry"])
    gen_p, claim_p, done_p = field(b, pool, _GEN), field(b, pool, _CLAIM), field(b, pool, _DONE)
    nchunks = b.sdiv(b.add(b.sub(end, first), b.sub(chunk, c64(1))), chunk)
    job = b.add(load(b, gen_p, i32), c32(1))
    # Invalidate the old job before touching its fields (see work's acquire fence).
    store(b, b.shl(b.zext(job, i64), c64(32)), claim_p, "seq_cst")
    b.fence("release")
    for i, v in enumerate((b.ptrtoint(fn, i64), b.ptrtoint(bindings, i64),
                           b.ptrtoint(consts, i64), b.ptrtoint(wgc, i64), first, end, chunk,
                           nchunks)):
        store(b, v, field(b, pool, _JOB + 8 * i))
    if futex is not None:
        store(b, b.call(getcpu, []), field(b, pool, _SUBMIT_CPU))
    store(b, c32(0), done_p)
    store(b, c32(0), field(b, pool, _WAITER))
    store(b, c32(0), field(b, pool, _RC))
    store(b, job, gen_p, "seq_cst")
    # Dekker with a helper going to sleep: it counts itself in `sleepers`, then re-reads gen.
    sleepers = load(b, field(b, pool, _SLEEPERS), i32, "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", sleepers, c32(0)), blocks["wake"], blocks["work"])

    b.position_at_end(blocks["wake"])
    b.call(wake_fn, [gen_p, c32(0x7FFFFFFF)])
    if futex is not None:
        # A helper woken onto this CPU waits behind us for milliseconds: let it run now, and
        # it steps off to another CPU (move_off). Elsewhere this returns at once.
        b.call(sched_yield, [])
    b.branch(blocks["work"])

    b.position_at_end(blocks["work"])
    b.call(work_fn, [pool, job, ir.Constant(ir.IntType(1), 0)])
    spin = load(b, field(b, pool, _SPIN), i64)
    b.branch(blocks["spin"])

    b.position_at_end(blocks["spin"])
    i = b.phi(i64)
    i.add_incoming(c64(0), blocks["work"])
    done = load(b, done_p, i32, "acquire")
    all_done = b.icmp_unsigned("==", b.zext(done, i64), nchunks)
    b.cbranch(all_done, blocks["finished"], blocks["spin_more"])

    b.position_at_end(blocks["spin_more"])
    pause(b)
    i_next = b.add(i, c64(1))
    i.add_incoming(i_next, blocks["spin_more"])
    b.cbranch(b.icmp_signed("<", i_next, spin), blocks["spin"], blocks["sleep"])

    b.position_at_end(blocks["sleep"])
    store(b, c32(1), field(b, pool, _WAITER), "seq_cst")
    done = load(b, done_p, i32, "seq_cst")
    all_done = b.icmp_unsigned("==", b.zext(done, i64), nchunks)
    b.cbranch(all_done, blocks["finished"], blocks["block"])

    b.position_at_end(blocks["block"])
    b.call(block_fn, [done_p, done])
    b.branch(blocks["sleep"])

    b.position_at_end(blocks["finished"])
    b.ret(load(b, field(b, pool, _RC), i32))

    # worker(pool): the life of one helper thread; returns once the pool is stopped.
    worker_fn = function("hal_pool_worker", void, [ptr])
    (pool,) = worker_fn.args
    blocks = {n: worker_fn.append_basic_block(n)
              for n in ("entry", "wait", "spin", "spin_more", "sleep", "check", "block",
                        "woke", "got", "work", "exit")}
    b = ir.IRBuilder(blocks["entry"])
    gen_p, sleepers_p = field(b, pool, _GEN), field(b, pool, _SLEEPERS)
    if futex is not None:
        allowed, scratch = b.alloca(i64, 16), b.alloca(i64, 16)
        for k in range(16):
            b.store(c64(0), b.gep(allowed, [c64(k)], source_etype=i64))
        b.call(getaff, [c32(0), c64(128), allowed])
    spin = load(b, field(b, pool, _SPIN), i64)
    seen0 = load(b, gen_p, i32, "acquire")
    b.branch(blocks["wait"])

    b.position_at_end(blocks["wait"])
    seen = b.phi(i32)
    seen.add_incoming(seen0, blocks["entry"])
    b.branch(blocks["spin"])

    b.position_at_end(blocks["spin"])
    i = b.phi(i64)
    i.add_incoming(c64(0), blocks["wait"])
    g_spin = load(b, gen_p, i32, "acquire")
    b.cbranch(b.icmp_unsigned("!=", g_spin, seen), blocks["got"], blocks["spin_more"])

    b.position_at_end(blocks["spin_more"])
    pause(b)
    i_next = b.add(i, c64(1))
    i.add_incoming(i_next, blocks["spin_more"])
    b.cbranch(b.icmp_signed("<", i_next, spin), blocks["spin"], blocks["sleep"])

    b.position_at_end(blocks["sleep"])
    b.atomic_rmw("add", sleepers_p, c32(1), "seq_cst")
    b.branch(blocks["check"])

    b.position_at_end(blocks["check"])
    g_sleep = load(b, gen_p, i32, "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", g_sleep, seen), blocks["woke"], blocks["block"])

    b.position_at_end(blocks["block"])
    b.call(block_fn, [gen_p, seen])
    b.branch(blocks["check"])

    b.position_at_end(blocks["woke"])
    if futex is not None:
        b.call(move_fn, [pool, allowed, scratch])
    b.atomic_rmw("sub", sleepers_p, c32(1), "seq_cst")
    b.branch(blocks["got"])

    b.position_at_end(blocks["got"])
    g = b.phi(i32)
    g.add_incoming(g_spin, blocks["spin"])
    g.add_incoming(g_sleep, blocks["woke"])
    stopping = load(b, field(b, pool, _STOP), i32, "seq_cst")
    b.cbranch(b.icmp_unsigned("!=", stopping, c32(0)), blocks["exit"], blocks["work"])

    b.position_at_end(blocks["work"])
    b.call(work_fn, [pool, g, ir.Constant(ir.IntType(1), 1)])
    seen.add_incoming(g, blocks["work"])
    b.branch(blocks["wait"])

    b.position_at_end(blocks["exit"])
    b.ret_void()

    # stop(pool): helpers return from hal_pool_worker once they see it.
    stop_fn = function("hal_pool_stop", void, [ptr])
    b = ir.IRBuilder(stop_fn.append_basic_block())
    (pool,) = stop_fn.args
    store(b, c32(1), field(b, pool, _STOP), "seq_cst")
    b.atomic_rmw("add", field(b, pool, _GEN), c32(1), "seq_cst")
    b.call(wake_fn, [field(b, pool, _GEN), c32(0x7FFFFFFF)])
    b.ret_void()

    # spin(pool, n): n rounds of the helpers' spin loop (to calibrate SPIN_US in rounds).
    spin_fn = function("hal_pool_spin", void, [ptr, i64])
    pool, n = spin_fn.args
    blocks = {k: spin_fn.append_basic_block(k) for k in ("entry", "loop", "exit")}
    b = ir.IRBuilder(blocks["entry"])
    gen_p = field(b, pool, _GEN)
    b.branch(blocks["loop"])
    b.position_at_end(blocks["loop"])
    i = b.phi(i64)
    i.add_incoming(c64(0), blocks["entry"])
    load(b, gen_p, i32, "acquire")
    pause(b)
    i_next = b.add(i, c64(1))
    i.add_incoming(i_next, blocks["loop"])
    b.cbranch(b.icmp_signed("<", i_next, n), blocks["loop"], blocks["exit"])
    b.position_at_end(blocks["exit"])
    b.ret_void()

    return str(mod)


class _Native:
    """The linked pool code (kept for the life of the process: helpers may run in it)."""

    def __init__(self) -> None:
        import llvmlite.binding as llvm

        from hal_llvm_cpu.backend import init_llvm
        from hal_llvm_cpu.loader import host_arch, link_objects

        init_llvm()
        triple = llvm.get_process_triple()
        target = llvm.Target.from_triple(triple)
        tm = target.create_target_machine(opt=2, reloc="pic", codemodel="small")
        mod = llvm.parse_assembly(_build_ir(host_arch(), platform.system()))
        mod.triple = triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        names = ("hal_pool_run", "hal_pool_worker", "hal_pool_stop", "hal_pool_spin")
        self._tracker = link_objects([tm.emit_object(mod)], names, "hal-pool")
        self.run = _RUN(self._tracker["hal_pool_run"])
        self.worker = _WORKER(self._tracker["hal_pool_worker"])
        self.stop = _WORKER(self._tracker["hal_pool_stop"])
        self.spin = _SPINFN(self._tracker["hal_pool_spin"])
        self.rounds_per_us = self._calibrate()
        log.debug("native pool code linked; %.1f spin rounds per microsecond",
                  self.rounds_per_us)

    def _calibrate(self) -> float:
        """Spin rounds per microsecond (a ``pause`` takes 10-150 cycles depending on the CPU)."""
        block = _SharedBlock()
        n, best = 20000, float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self.spin(block.address, n)
            best = min(best, time.perf_counter() - t0)
        return n / max(best * 1e6, 1e-3)


def native() -> _Native:
    global _native
    with _native_lock:
        if _native is None:
            _native = _Native()
        return _native


class _SharedBlock:
    """The pool's shared words, 64-byte aligned, zeroed."""

    def __init__(self) -> None:
        self._raw = ctypes.create_string_buffer(_BLOCK_BYTES + 64)
        base = ctypes.addressof(self._raw)
        self.address = base + (-base % 64)

    def word(self, offset: int, ctype: Any) -> Any:
        return ctype.from_address(self.address + offset)


#: Pools not yet closed (stopped at interpreter exit); also keeps each one alive until closed.
_live: set[NativePool] = set()
_live_lock = threading.Lock()


def _helper(worker: Any, block: _SharedBlock) -> None:
    # The block is an argument so that it outlives the native loop that uses it.
    worker(block.address)


class NativePool:
    """``threads - 1`` helper threads in native code; the submitting thread is the other one."""

    def __init__(self, threads: int, spin_us: float = SPIN_US, name: str = "hal-pool") -> None:
        self.threads = threads
        self._native = native()
        self._block = _SharedBlock()
        self._block.word(_SPIN, ctypes.c_int64).value = max(
            1, int(spin_us * self._native.rounds_per_us))
        self._lock = threading.Lock()
        self._closed = False
        self._helpers = [threading.Thread(target=_helper, args=(self._native.worker, self._block),
                                          name=f"{name}-native-{i}", daemon=True)
                         for i in range(threads - 1)]
        with _live_lock:
            _live.add(self)
        for t in self._helpers:
            t.start()

    def run(self, fn: int, bindings: Any, constants: Any, workgroup_count: Any, first: int,
            end: int, chunk: int) -> tuple[int, int, int]:
        """Run workgroups ``[first, end)`` of entry point address ``fn``; returns (rc, first,
        end) of the first chunk that failed, or (0, first, end).

        A second caller while a dispatch is running (or after close) runs its workgroups
        itself in one call instead of waiting for the pool.
        """
        if end <= first:
            return 0, first, end
        if end - first > chunk << 30:   # chunk indices are 32-bit in the claim word
            chunk = -(-(end - first) >> 30)
        if not self._lock.acquire(False):
            return self._alone(fn, bindings, constants, workgroup_count, first, end)
        try:
            if self._closed:
                return self._alone(fn, bindings, constants, workgroup_count, first, end)
            rc = self._native.run(self._block.address, fn, bindings, constants,
                                  workgroup_count, first, end, chunk)
            if rc:
                return (rc, self._block.word(_ERR_FIRST, ctypes.c_int64).value,
                        self._block.word(_ERR_END, ctypes.c_int64).value)
            return 0, first, end
        finally:
            self._lock.release()

    @property
    def helped(self) -> int:
        """Chunks that helper threads (not submitters) have run since the pool started."""
        return self._block.word(_HELPED, ctypes.c_int64).value

    @staticmethod
    def _alone(fn: int, bindings: Any, constants: Any, workgroup_count: Any, first: int,
               end: int) -> tuple[int, int, int]:
        from hal_llvm_cpu.loader import _ENTRY

        return _ENTRY(fn)(bindings, constants, workgroup_count, first, end), first, end

    def close(self, timeout: float = 5.0) -> None:
        """Stop the helpers and join them (waits for a dispatch in flight first)."""
        locked = self._lock.acquire(timeout=timeout)
        try:
            self._closed = True
            deadline = time.monotonic() + timeout
            # Repeated: a stop racing a submitter's job post is re-announced until seen.
            while True:
                self._native.stop(self._block.address)
                alive = [t for t in self._helpers if t.is_alive()]
                if not alive or time.monotonic() > deadline:
                    break
                alive[0].join(0.02)
            if any(t.is_alive() for t in self._helpers):
                log.warning("native pool: %d helper threads did not stop",
                            sum(t.is_alive() for t in self._helpers))
        finally:
            if locked:
                self._lock.release()
        with _live_lock:
            _live.discard(self)


@atexit.register
def _stop_all() -> None:
    # Helpers are daemon threads parked in native code; stop them before the interpreter
    # (and the JIT holding their code) goes away.
    with _live_lock:
        pools = list(_live)
    for pool in pools:
        pool.close(timeout=1.0)
