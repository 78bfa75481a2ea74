"""Tests for cnnsize.core.ops, each checked against an independent source named in its docstring.

Seeds: /work/shared/seeds/003_6cfb033e448c35e6.txt (CSC2515 Lecture 9, convolution) and
/work/shared/seeds/001_be9802bede35e9ba.txt (pooling slide). Torch and scipy tests skip alone when those are absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cnnsize.core.ops as ops
from cnnsize.core.errors import CnnsizeError

SEED_CONV = "seed 003_6cfb033e448c35e6 (CSC2515 Lecture 9 slides)"
SEED_POOL = "seed 001_be9802bede35e9ba (pooling slide)"
PROPS = settings(max_examples=100, deadline=None)
MODES = ("full", "valid", "same")

small_ints = st.integers(-5, 5)


def int_arrays(ndim: int, max_side: int = 6):
    """Small int64 arrays: exact in int and in float64, so results compare with ==."""
    shapes = hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=max_side)
    return hnp.arrays(np.int64, shapes, elements=small_ints)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def signal():
    return pytest.importorskip("scipy.signal")


def dilate(v: np.ndarray, d: int) -> np.ndarray:
    """A 1-D kernel with d - 1 zeros between taps (the definition of dilation)."""
    out = np.zeros(d * (len(v) - 1) + 1, dtype=v.dtype)
    out[::d] = v
    return out


# --- the seed's worked examples ----------------------------------------------------------------------------------

def test_seed_1d_convolution():
    """Source: SEED_CONV, "Method 1: translate-and-scale": (2, -1, 1) * (1, 1, 2) = (2, 1, 4, -1, 2)."""
    out = ops.convolve1d([2, -1, 1], [1, 1, 2])
    assert out.tolist() == [2, 1, 4, -1, 2]
    assert out.dtype.kind == "i"


def test_seed_2d_convolution():
    """Source: SEED_CONV, "2-D Convolution, Method 1: Translate-and-Scale"."""
    a = [[1, 3, 1], [0, -1, 1], [2, 2, -1]]
    b = [[1, 2], [0, -1]]
    out = ops.convolve2d(a, b)
    assert out.tolist() == [[1, 5, 7, 2], [0, -2, -4, 1], [2, 6, 4, -3], [0, -2, -2, 1]]
    assert out.dtype.kind == "i"


def test_seed_max_pool():
    """Source: SEED_POOL, max pooling with 2x2 filters and stride 2."""
    x = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
    assert ops.max_pool2d(x, 2, stride=2).tolist() == [[6, 8], [3, 4]]
    assert ops.max_pool2d(x, 2).tolist() == [[6, 8], [3, 4]]  # stride defaults to the kernel


def test_seed_matrix_multiplication_view():
    """Source: SEED_CONV, "Convolution can also be viewed as matrix multiplication" (the slide's matrix)."""
    toeplitz = np.array([[1, 0, 0], [1, 1, 0], [2, 1, 1], [0, 2, 1], [0, 0, 2]])
    assert (toeplitz @ np.array([2, -1, 1])).tolist() == ops.convolve1d([2, -1, 1], [1, 1, 2]).tolist()


@PROPS
@given(int_arrays(1), int_arrays(1))
def test_matrix_multiplication_view(a, b):
    """Source: SEED_CONV, matrix view in general: column j of the matrix is b shifted down by j."""
    matrix = np.zeros((len(a) + len(b) - 1, len(a)), dtype=np.int64)
    for j in range(len(a)):
        matrix[j:j + len(b), j] = b
    np.testing.assert_array_equal(ops.convolve1d(a, b), matrix @ a)


@PROPS
@given(int_arrays(2), int_arrays(2))
def test_commutativity(a, b):
    """Source: SEED_CONV, "Some properties of convolution: Commutativity a * b = b * a" (1-D and 2-D, full)."""
    np.testing.assert_array_equal(ops.convolve2d(a, b), ops.convolve2d(b, a))
    np.testing.assert_array_equal(ops.convolve1d(a.ravel(), b.ravel()), ops.convolve1d(b.ravel(), a.ravel()))


@PROPS
@given(int_arrays(2, 4), int_arrays(2, 4), int_arrays(2, 4), small_ints, small_ints)
def test_linearity(a, b, c, l1, l2):
    """Source: SEED_CONV, "Linearity: a * (l1 b + l2 c) = l1 a * b + l2 a * c" (same-shaped b, c)."""
    c = np.resize(c, b.shape)
    np.testing.assert_array_equal(ops.convolve2d(a, l1 * b + l2 * c),
                                  l1 * ops.convolve2d(a, b) + l2 * ops.convolve2d(a, c))


# --- against numpy (independent implementation) ------------------------------------------------------------------

@PROPS
@given(int_arrays(1, 8), int_arrays(1, 8), st.sampled_from(MODES))
def test_1d_against_numpy(a, v, mode):
    """Source: numpy.convolve / numpy.correlate, all modes (numpy's "same" is max(M, N) long, so len(a) >= len(v))."""
    if mode == "same" and len(a) < len(v):
        a, v = v, a
    out = ops.convolve1d(a, v, mode)
    np.testing.assert_array_equal(out, np.convolve(a, v, mode))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(ops.correlate1d(a, v, mode), np.correlate(a, v, mode))


@PROPS
@given(int_arrays(1, 8), int_arrays(1, 4), st.sampled_from(MODES), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 3))
def test_1d_padding_then_mode_then_stride(a, v, mode, stride, padding, dilation):
    """Source: numpy.convolve / correlate on the documented rule: pad, dilate, apply the mode, keep every stride-th."""
    padded, kernel = np.pad(a, padding), dilate(v, dilation)
    if mode == "same" and len(padded) < len(kernel):
        return  # numpy's "same" differs from scipy's there; covered by test_2d_against_scipy
    expected = np.convolve(padded, kernel, mode)[::stride]
    got = ops.convolve1d(a, v, mode, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ops.correlate1d(a, v, mode, stride, padding, dilation),
                                  np.correlate(padded, kernel, mode)[::stride])


def test_same_is_size_of_first_input():
    """Source: scipy.signal.convolve docs: "same" output is the size of in1, even when in2 is larger."""
    assert ops.convolve1d([1, 2], [1, 1, 1, 1, 1], "same").tolist() == [3, 3]
    assert ops.convolve2d(np.ones((2, 3), int), np.ones((4, 4), int), "same").shape == (2, 3)


def test_integer_dtypes_are_kept():
    """Source: the module contract (exact integers): common numpy dtype, no float conversion."""
    assert ops.convolve2d(np.ones((3, 3), np.int32), np.ones((2, 2), np.int32)).dtype == np.int32
    assert ops.correlate2d(np.ones((3, 3), np.uint8), ops.SOBEL_X).dtype == np.int64
    assert ops.conv2d_layer(np.ones((1, 3, 3), int), np.ones((2, 1, 2, 2), int), bias=[1, 2]).dtype == np.int64
    assert ops.max_pool2d(np.ones((2, 2), np.int16), 2).dtype == np.int16
    assert ops.avg_pool2d(np.ones((2, 2), np.float32), 2).dtype == np.float32
    assert ops.avg_pool2d(np.ones((2, 2), np.int64), 2).dtype == np.float64  # a mean of ints is not an int


# --- against scipy.signal (2-D modes, centering of "same") -------------------------------------------------------

@PROPS
@given(int_arrays(2), int_arrays(2), st.sampled_from(MODES))
def test_2d_against_scipy(signal, a, v, mode):
    """Source: scipy.signal.convolve / correlate (n-d), all modes, kernels larger than the input included.

    Not scipy.signal.correlate2d: its "same" is centered one place off from scipy.signal.correlate for even kernels.
    """
    if mode == "valid" and np.less(a.shape, v.shape).any() and np.greater(a.shape, v.shape).any():
        with pytest.raises(CnnsizeError):  # scipy raises ValueError too
            ops.convolve2d(a, v, mode)
        return
    np.testing.assert_array_equal(ops.convolve2d(a, v, mode), signal.convolve(a, v, mode, method="direct"))
    np.testing.assert_array_equal(ops.convolve2d(a, v, mode), signal.convolve2d(a, v, mode))
    np.testing.assert_array_equal(ops.correlate2d(a, v, mode), signal.correlate(a, v, mode, method="direct"))


# --- against torch.nn.functional ---------------------------------------------------------------------------------

@st.composite
def layer_cases(draw, nd: int):
    """Valid torch conv arguments: x, weights, bias, stride, padding, dilation, groups (small ints)."""
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    padding = [draw(st.integers(0, 2)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 2)) for _ in range(nd)]
    sizes = []
    for k, p, d in zip(kernel, padding, dilation, strict=True):
        least = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(least, least + 5)))
    lead = draw(st.sampled_from([(), (1,), (2,)]))  # unbatched or batched
    x = draw(hnp.arrays(np.int64, (*lead, groups * cg, *sizes), elements=small_ints))
    w = draw(hnp.arrays(np.int64, (groups * kg, cg, *kernel), elements=small_ints))
    bias = draw(st.none() | hnp.arrays(np.int64, (groups * kg,), elements=small_ints))
    scalar = draw(st.booleans())  # pass ints, not tuples, where all dims agree

    def pick(v: list[int]) -> int | tuple[int, ...]:
        return v[0] if scalar and len(set(v)) == 1 else tuple(v)

    return x, w, bias, pick(stride), pick(padding), pick(dilation), groups


def torch_conv(torch, fn, x, w, bias, stride, padding, dilation, groups):
    def t(a):
        return None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64))

    return fn(t(x), t(w), t(bias), stride=stride, padding=padding, dilation=dilation, groups=groups).numpy()


@PROPS
@given(layer_cases(2))
def test_conv2d_layer_against_torch(torch, case):
    """Source: torch.nn.functional.conv2d (stride, padding, dilation, groups, bias; batched and not)."""
    got = ops.conv2d_layer(*case)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, torch_conv(torch, torch.nn.functional.conv2d, *case))


@PROPS
@given(layer_cases(1))
def test_conv1d_layer_against_torch(torch, case):
    """Source: torch.nn.functional.conv1d (stride, padding, dilation, groups, bias; batched and not)."""
    got = ops.conv1d_layer(*case)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, torch_conv(torch, torch.nn.functional.conv1d, *case))


@PROPS
@given(layer_cases(2))
def test_correlate2d_and_convolve2d_against_torch(torch, case):
    """Source: torch.nn.functional.conv2d is cross-correlation: correlate2d(valid) matches it, convolve2d needs
    the kernel flipped."""
    x, w, _, stride, padding, dilation, _ = case
    a, v = x.reshape(-1, *x.shape[-2:])[0], w[0, 0]
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=1)
    expected = torch_conv(torch, torch.nn.functional.conv2d, a[None, None], v[None, None], None, **args)[0, 0]
    np.testing.assert_array_equal(ops.correlate2d(a, v, "valid", stride, padding, dilation), expected)
    flipped = torch_conv(torch, torch.nn.functional.conv2d, a[None, None], v[::-1, ::-1][None, None], None, **args)
    np.testing.assert_array_equal(ops.convolve2d(a, v, "valid", stride, padding, dilation), flipped[0, 0])


@st.composite
def pool_cases(draw):
    """Valid torch pooling arguments: x with 2 to 4 dims, kernel, stride (None = kernel), padding <= kernel // 2."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    sizes = [draw(st.integers(max(1, k - 2 * p), k - 2 * p + 5)) for k, p in zip(kernel, padding, strict=True)]
    lead = draw(st.sampled_from([(), (2,), (1, 2), (2, 1)]))
    x = draw(hnp.arrays(np.int64, (*lead, *sizes), elements=st.integers(-9, -1) | small_ints))
    return x, kernel, stride, padding


def torch_pool(torch, fn, x, kernel, stride, padding):
    t = torch.from_numpy(x.astype(np.float64))
    t = t[None] if x.ndim == 2 else t  # torch pools (C, H, W) or (N, C, H, W)
    out = fn(t, kernel, stride=stride, padding=padding).numpy()
    return out[0] if x.ndim == 2 else out


@PROPS
@given(pool_cases())
def test_max_pool2d_against_torch(torch, case):
    """Source: torch.nn.functional.max_pool2d (padding never wins: inputs are often all negative)."""
    got = ops.max_pool2d(*case)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, torch_pool(torch, torch.nn.functional.max_pool2d, *case))


@PROPS
@given(pool_cases())
def test_avg_pool2d_against_torch(torch, case):
    """Source: torch.nn.functional.avg_pool2d with its default count_include_pad=True."""
    np.testing.assert_allclose(ops.avg_pool2d(*case), torch_pool(torch, torch.nn.functional.avg_pool2d, *case),
                               rtol=1e-12, atol=1e-12)


# --- named kernels -----------------------------------------------------------------------------------------------

def test_named_kernels():
    """Source: SEED_CONV, the filters on the "What does this filter do?" slides; SOBEL_Y is SOBEL_X transposed."""
    assert ops.BLUR.tolist() == [[0, 1, 0], [1, 4, 1], [0, 1, 0]]
    assert ops.SHARPEN.tolist() == [[0, -1, 0], [-1, 8, -1], [0, -1, 0]]
    assert ops.LAPLACIAN.tolist() == [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    assert ops.SOBEL_X.tolist() == [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    np.testing.assert_array_equal(ops.SOBEL_Y, ops.SOBEL_X.T)
    for kernel in (ops.BLUR, ops.SHARPEN, ops.LAPLACIAN, ops.SOBEL_X, ops.SOBEL_Y):
        assert kernel.dtype.kind == "i"


def test_named_kernels_do_what_their_docstrings_say():
    """Source: SEED_CONV (blur, sharpen, edges): flat images give 0 edges; a vertical step only excites SOBEL_X."""
    flat = np.full((5, 5), 7)
    assert not ops.convolve2d(flat, ops.LAPLACIAN, "valid").any()
    assert (ops.convolve2d(flat, ops.BLUR, "valid") == 8 * 7).all()
    step = np.repeat([[0, 0, 0, 9, 9, 9]], 5, axis=0)  # dark left, bright right
    assert ops.convolve2d(step, ops.SOBEL_X, "valid").any()
    assert not ops.convolve2d(step, ops.SOBEL_Y, "valid").any()


# --- errors ------------------------------------------------------------------------------------------------------

ONES = np.ones((4, 4), dtype=int)


@pytest.mark.parametrize("call", [
    lambda: ops.convolve2d(ONES, ONES[:2, :2], mode="circular"),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], stride=0),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], padding=-1),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], dilation=(1, 0)),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], stride=(1, 2, 3)),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], stride=1.5),
    lambda: ops.convolve2d(ONES, ONES[:2, :2], stride=True),
    lambda: ops.convolve2d(ONES[0], ONES[:2, :2]),
    lambda: ops.convolve1d(ONES, [1]),
    lambda: ops.convolve1d([], [1]),
    lambda: ops.convolve1d([True, False], [1]),
    lambda: ops.correlate2d(np.ones((2, 5)), np.ones((5, 2)), "valid"),
    lambda: ops.conv2d_layer(np.ones((3, 4, 4)), np.ones((2, 2, 3, 3))),
    lambda: ops.conv2d_layer(np.ones((4, 4, 4)), np.ones((3, 2, 3, 3)), groups=2),
    lambda: ops.conv2d_layer(np.ones((4, 4, 4)), np.ones((2, 2, 3, 3)), groups=0),
    lambda: ops.conv2d_layer(np.ones((2, 4, 4)), np.ones((3, 2, 3, 3)), bias=np.ones(2)),
    lambda: ops.conv2d_layer(np.ones((2, 2, 2)), np.ones((3, 2, 3, 3))),
    lambda: ops.conv1d_layer(np.ones((2, 4, 4)), np.ones((3, 2, 3, 3))),
    lambda: ops.max_pool2d(ONES, 2, padding=2),
    lambda: ops.avg_pool2d(ONES, 5),
    lambda: ops.avg_pool2d(ONES[0], 1),
])
def test_bad_arguments_raise_cnnsize_error(call):
    """Source: the module contract: bad arguments raise CnnsizeError (a ValueError) with a message."""
    with pytest.raises(CnnsizeError) as info:
        call()
    assert isinstance(info.value, ValueError) and info.value.message
