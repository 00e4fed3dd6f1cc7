"""The few machine operations a thread pool needs that Numba does not offer, as Numba intrinsics.

``aae_np.fast.pool`` hands work between threads through one shared int64 array. Plain loads and
stores are not enough for that: the compiler may keep a value in a register instead of reading
memory again, and the CPU may reorder a store that publishes a job before the stores that fill it
in. These intrinsics emit the LLVM instructions that forbid both (acquire loads, release stores,
atomic adds), the CPU's spin-wait hint, a read of the cycle counter, and a call of a CBLAS GEMM through its
address. Each is a few lines of LLVM IR; they compile
into the calling jitted function, so Numba's on-disk cache keeps working. Below them, three C
library calls the pool makes from jitted code (nap, yield the core, which CPU am I on).

x86-64 only (``pause`` is the x86 spin hint); ``pool.available()`` checks the machine.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["load_acquire", "store_release", "fetch_add", "spin_pause", "cycles", "call_gemm", "as_pointer",
           "usleep", "sched_yield", "sched_getcpu"]

_I64 = ir.IntType(64)
# three C library calls, resolved by name in the running process (Linux)
usleep = types.ExternalFunction("usleep", types.int32(types.uint32))
sched_yield = types.ExternalFunction("sched_yield", types.int32())
sched_getcpu = types.ExternalFunction("sched_getcpu", types.int32())


def _slot(context, builder, array_type, array, index):
    """A pointer to ``array[index]`` (an int64 array)."""
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


@intrinsic
def load_acquire(typingctx, array, index):
    """``array[index]``, read from memory now; later reads are not moved before it."""
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_slot(context, builder, sig.args[0], *args), "acquire", 8)
    return types.int64(array, index), codegen


@intrinsic
def store_release(typingctx, array, index, value):
    """``array[index] = value``, after every earlier write is visible to the other threads."""
    def codegen(context, builder, sig, args):
        ptr = _slot(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(context.cast(builder, args[2], sig.args[2], types.int64), ptr, "release", 8)
        return context.get_dummy_value()
    return types.void(array, index, value), codegen


@intrinsic
def fetch_add(typingctx, array, index, value):
    """``array[index] += value`` as one indivisible step; returns the value before."""
    def codegen(context, builder, sig, args):
        ptr = _slot(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, context.cast(builder, args[2], sig.args[2], types.int64),
                                  "acq_rel")
    return types.int64(array, index, value), codegen


@intrinsic
def spin_pause(typingctx):
    """The CPU's hint that this is a spin-wait loop (x86 ``pause``): it saves power and lets the
    other hyper-thread of the core run."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                            "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def cycles(typingctx):
    """The CPU's time-stamp counter (x86 ``rdtsc``): a cheap clock for "have I spun long enough"."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64, []), "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@intrinsic
def call_gemm(typingctx, function, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, one):
    """Call the C function at address ``function`` as CBLAS ``?gemm`` (64-bit integers, as in
    NumPy's OpenBLAS): row-major ``C = op(A) op(B)`` for M x N ``C``, alpha 1, beta 0. ``ta``,
    ``tb``: 111 (no transpose) or 112; ``a``, ``b``, ``c``: addresses; ``one``'s type (float32 or
    float64) picks the type of alpha and beta, so that ``function`` must be ``sgemm`` or ``dgemm``."""
    def codegen(context, builder, sig, args):
        i32, voidp = ir.IntType(32), ir.IntType(8).as_pointer()
        real = context.get_value_type(sig.args[-1])
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, _I64, _I64, _I64, real, voidp, _I64, voidp, _I64,
                                               real, voidp, _I64])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        ta, tb, m, n, k = args[1:6]
        builder.call(fn, [ir.Constant(i32, 101), builder.trunc(ta, i32), builder.trunc(tb, i32), m, n, k,
                          ir.Constant(real, 1.0), builder.inttoptr(args[6], voidp), args[7],
                          builder.inttoptr(args[8], voidp), args[9], ir.Constant(real, 0.0),
                          builder.inttoptr(args[10], voidp), args[11]])
        return context.get_dummy_value()
    return types.void(*([types.int64] * 12), one), codegen


@intrinsic
def as_pointer(typingctx, address, like):
    """The int64 ``address`` as a pointer to ``like``'s type (a scalar, or an array's dtype), for
    ``numba.carray``."""
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))
    return types.CPointer(getattr(like, "dtype", like))(address, like), codegen
