"""Tests for tasks/: every task against an independent computation on strings."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tasks

SYMBOLIC = ['copy', 'reverse', 'dup', 'sort', 'kvsort', 'rev2', 'search', 'repeat_even']
ARITH = {'badd': (2, '+'), 'qadd': (4, '+'), 'add': (10, '+'),
         'bmul': (2, '*'), 'qmul': (4, '*'), 'mul': (10, '*')}
SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=20, deadline=None)


# ---- independent references, on decoded strings ------------------------------

def symbolic_reference(task, inp: str) -> str:
  name, n = task.name, len(inp)
  rank = task.symbols.index
  even = inp[:n - n % 2]
  pairs = [even[i:i + 2] for i in range(0, len(even), 2)]
  tail = '_' * (n % 2)
  if name == 'copy':
    return inp
  if name == 'reverse':
    return inp[::-1]
  if name == 'sort':
    return ''.join(sorted(inp, key=rank))
  if name == 'dup':
    k = (n + 1) // 2
    assert '_' not in inp[:k] and inp[k:] == '_' * (n - k)
    return (inp[:k] * 2)[:n]
  if name == 'repeat_even':
    return ''.join(c + c for c in inp[::2])[:n]
  if name == 'kvsort':
    return ''.join(sorted(pairs, key=lambda p: rank(p[0]))) + tail  # sorted is stable
  if name == 'rev2':
    return ''.join(reversed(pairs)) + tail
  if name == 'search':
    assert even[-2] == '?' and '?' not in even[:-2]
    query = even[-1]
    value = next(p[1] for p in pairs[:-1] if p[0] == query)
    return value + '_' * (n - 1)
  raise AssertionError(name)


def check_arithmetic(task, base, op, inp, tgt):
  a, b = inp.split(op)
  assert len(a) == len(b) == (len(inp) - 1) // 2
  assert set(tgt) <= set('0123456789'[:base]) and len(tgt) == len(inp)
  x, y = int(a[::-1], base), int(b[::-1], base)
  assert int(tgt[::-1], base) == (x + y if op == '+' else x * y)
  return x, y


def check_batch(task, batch, batch_size, length):
  for arr in batch:
    assert arr.dtype == np.int32 and arr.shape == (batch_size, length)
    assert arr.min() >= 0 and arr.max() < task.vocab_size


def rows(task, batch):
  return [(task.decode(i), task.decode(t)) for i, t in zip(batch.inputs, batch.targets)]


# ---- correctness ---------------------------------------------------------------

@pytest.mark.parametrize('name', SYMBOLIC)
@FEW
@given(alphabet=st.integers(2, 62), seed=SEEDS, batch_size=st.integers(1, 4), data=st.data())
def test_symbolic_tasks_match_reference(name, alphabet, seed, batch_size, data):
  task = tasks.get(name, alphabet_size=alphabet)
  length = data.draw(st.sampled_from(task.valid_lengths(50)))
  batch = task.sample(seed, batch_size, length)
  check_batch(task, batch, batch_size, length)
  for inp, tgt in rows(task, batch):
    assert set(inp) <= set(task.symbols[1:alphabet + 1]) | {'_', '?'}
    assert tgt == symbolic_reference(task, inp)


@pytest.mark.parametrize('name', sorted(ARITH))
@FEW
@given(seed=SEEDS, batch_size=st.integers(1, 4), k=st.integers(1, 40))
def test_arithmetic_matches_python_ints(name, seed, batch_size, k):
  task = tasks.get(name)
  base, op = ARITH[name]
  assert task.symbols == ['_', *'0123456789'[:base], op]
  batch = task.sample(seed, batch_size, 2 * k + 1)
  check_batch(task, batch, batch_size, 2 * k + 1)
  for inp, tgt in rows(task, batch):
    check_arithmetic(task, base, op, inp, tgt)


@pytest.mark.parametrize('name', sorted(ARITH))
@settings(max_examples=2, deadline=None)
@given(seed=SEEDS, length=st.sampled_from([401, 4001]))
def test_arithmetic_long_lengths(name, seed, length):
  task = tasks.get(name)
  base, op = ARITH[name]
  for inp, tgt in rows(task, task.sample(seed, 2, length)):
    check_arithmetic(task, base, op, inp, tgt)


def test_decimal_beyond_int_str_limit():
  # 4500-digit operands: past Python's default 4300-digit str<->int limit.
  task = tasks.get('mul')
  batch = task.sample(7, 1, 9001)
  old = sys.get_int_max_str_digits()
  sys.set_int_max_str_digits(0)  # only so this check can use plain int()
  try:
    for inp, tgt in rows(task, batch):
      check_arithmetic(task, 10, '*', inp, tgt)
  finally:
    sys.set_int_max_str_digits(old)


@pytest.mark.parametrize('name', SYMBOLIC)
@settings(max_examples=2, deadline=None)
@given(seed=SEEDS)
def test_symbolic_long_length(name, seed):
  task = tasks.get(name, alphabet_size=32)
  for inp, tgt in rows(task, task.sample(seed, 2, 4001)):
    assert tgt == symbolic_reference(task, inp)


@pytest.mark.parametrize('params', [{'base': 2}, {'base': 4}, {'base': 10}])
@FEW
@given(seed=SEEDS, length=st.integers(2, 60))
def test_generic_arithmetic_and_incr(params, seed, length):
  base = params['base']
  for name, op in [('addition', '+'), ('multiplication', '*')]:
    task = tasks.get(name, **params)
    if task.is_valid_length(length):
      for inp, tgt in rows(task, task.sample(seed, 3, length)):
        check_arithmetic(task, base, op, inp, tgt)
  task = tasks.get('incr', **params)
  for inp, tgt in rows(task, task.sample(seed, 3, length)):
    assert inp[-1] == '0' and '_' not in tgt
    assert int(tgt[::-1], base) == int(inp[::-1], base) + 1


@FEW
@given(name=st.sampled_from(['xor', 'parity']), n_bits=st.integers(2, 16), seed=SEEDS)
def test_xor_parity(name, n_bits, seed):
  task = tasks.get(name, n_bits=n_bits)
  assert task.fixed_length == n_bits and task.valid_lengths(100) == [n_bits]
  for inp, tgt in rows(task, task.sample(seed, 8, n_bits)):
    assert set(inp) <= {'0', '1'}
    assert tgt == str(inp.count('1') % 2) + '_' * (n_bits - 1)


def test_defaults():
  assert tasks.get('xor').fixed_length == 2 and tasks.get('parity').fixed_length == 8
  assert tasks.get('copy').symbols == ['_', '0', '1']
  assert tasks.get('copy', alphabet_size=62).symbols[-1] == 'Z'
  assert tasks.get('search', alphabet_size=3).symbols == ['_', '0', '1', '2', '?']
  assert tasks.get('incr').symbols == ['_', *'0123456789']
  assert tasks.get('copy').fixed_length is None


# ---- hard test sets ------------------------------------------------------------

@FEW
@given(name=st.sampled_from(['badd', 'qadd', 'add']), seed=SEEDS, k=st.integers(1, 60))
def test_hard_carry_chains(name, seed, k):
  task = tasks.get(name)
  base, op = ARITH[name]
  for inp, tgt in rows(task, task.sample_hard(seed, 4, 2 * k + 1, 'carry')):
    x, y = check_arithmetic(task, base, op, inp, tgt)
    # Some window of >= k/2 digits sums to base^c or base^c - 1.
    assert any((x // base**s % base**c) + (y // base**s % base**c) in (base**c, base**c - 1)
               for c in range((k + 1) // 2, k + 1) for s in range(k - c + 1))


@FEW
@given(name=st.sampled_from(['badd', 'qadd', 'add']), seed=SEEDS, k=st.integers(1, 60))
def test_hard_propagate(name, seed, k):
  task = tasks.get(name)
  base, op = ARITH[name]
  for inp, tgt in rows(task, task.sample_hard(seed, 4, 2 * k + 1, 'propagate')):
    check_arithmetic(task, base, op, inp, tgt)


def test_hard_propagate_makes_long_carry_chains():
  task = tasks.get('badd')
  k = 40
  batch = task.sample_hard(0, 256, 2 * k + 1, 'propagate')
  sums = (batch.inputs[:, :k] - 1) + (batch.inputs[:, k + 1:] - 1)
  share = np.mean(sums == 1)  # random operands: 1/2; here p in [0.75, 0.95] + (1 - p) / 2
  assert 0.9 < share < 0.95, share


@FEW
@given(name=st.sampled_from(sorted(ARITH)), seed=SEEDS, k=st.integers(1, 60))
def test_hard_zeros(name, seed, k):
  task = tasks.get(name)
  base, op = ARITH[name]
  for inp, tgt in rows(task, task.sample_hard(seed, 4, 2 * k + 1, 'zeros')):
    x, y = check_arithmetic(task, base, op, inp, tgt)
    assert x < base**3 and y < base**3


@FEW
@given(seed=SEEDS, length=st.integers(2, 60), kind=st.sampled_from(['carry', 'zeros']))
def test_hard_incr(seed, length, kind):
  task = tasks.get('incr', base=2)
  for inp, tgt in rows(task, task.sample_hard(seed, 4, length, kind)):
    x = int(inp[::-1], 2)
    assert inp[-1] == '0' and int(tgt[::-1], 2) == x + 1
    if kind == 'carry':
      assert inp.startswith('1' * (length // 2))  # c >= ceil((L-1)/2)
    else:
      assert x < 8


def test_hard_sets_cover_both_carry_totals_and_zero_operands():
  task = tasks.get('add')
  totals, zero = set(), False
  for inp, _ in rows(task, task.sample_hard(0, 64, 9, 'carry')):
    a, b = inp.split('+')
    totals.add(int(a[::-1]) + int(b[::-1]) == 10**4)
  for inp, _ in rows(tasks.get('mul'), tasks.get('mul').sample_hard(0, 64, 41, 'zeros')):
    zero |= inp.split('*')[0] == '0' * 20
  assert totals == {True, False} and zero


def test_hard_kind_errors():
  with pytest.raises(ValueError, match="unknown hard kind 'carry'; valid kinds: zeros"):
    tasks.get('mul').sample_hard(0, 2, 9, 'carry')
  with pytest.raises(ValueError, match="unknown hard kind 'propagate'; valid kinds: zeros"):
    tasks.get('mul').sample_hard(0, 2, 9, 'propagate')
  with pytest.raises(ValueError, match='valid kinds: none'):
    tasks.get('copy').sample_hard(0, 2, 9, 'zeros')
  with pytest.raises(ValueError, match='badd needs odd length >= 3, got 8'):
    tasks.get('badd').sample_hard(0, 2, 8, 'carry')


# ---- determinism, shapes, API --------------------------------------------------

@pytest.mark.parametrize('name', tasks.names())
def test_determinism_and_seeds(name):
  task = tasks.get(name)
  length = task.nearest_valid_length(21)
  state = np.random.get_state()
  a, b = task.sample(5, 16, length), task.sample(5, 16, length)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not np.array_equal(a.inputs, task.sample(6, 16, length).inputs)
  assert not np.array_equal(task.sample((1, 2), 16, length).inputs,
                            task.sample((1, 3), 16, length).inputs)
  assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG untouched
  check_batch(task, a, 16, length)
  assert a.inputs.flags.c_contiguous and a.targets.flags.c_contiguous
  x, y = a  # Batch unpacks like a tuple
  assert x is a.inputs and y is a.targets


@pytest.mark.parametrize('name', tasks.names())
def test_vocab_and_round_trip(name):
  task = tasks.get(name)
  assert task.name == name and task.symbols[0] == '_'
  assert task.vocab_size == len(task.symbols) == len(set(task.symbols))
  batch = task.sample(0, 4, task.nearest_valid_length(15))
  for arr in (batch.inputs[0], batch.targets[0]):
    text = task.decode(arr)
    assert np.array_equal(task.encode(text), arr) and task.encode(text).dtype == np.int32
  assert task.decode([0]) == '_'


def test_names_sorted_and_complete():
  expected = {'copy', 'reverse', 'dup', 'sort', 'kvsort', 'rev2', 'incr', 'search',
              'repeat_even', 'badd', 'qadd', 'add', 'bmul', 'qmul', 'mul', 'xor',
              'parity', 'addition', 'multiplication'}
  assert tasks.names() == sorted(expected)


def test_length_helpers():
  badd = tasks.get('badd')
  assert badd.valid_lengths(9) == [3, 5, 7, 9] and badd.valid_lengths(2) == []
  assert badd.nearest_valid_length(40) == 39 and badd.nearest_valid_length(4001) == 4001
  assert badd.is_valid_length(41) and not badd.is_valid_length(40)
  assert not badd.is_valid_length(41.0) and not badd.is_valid_length(True)
  assert tasks.get('kvsort').valid_lengths(5) == [2, 3, 4, 5]
  assert tasks.get('search').nearest_valid_length(4) == 4
  assert tasks.get('xor').nearest_valid_length(100) == 2
  with pytest.raises(ValueError, match=r'badd: no valid length <= 2; badd needs odd length >= 3'):
    badd.nearest_valid_length(2)
  with pytest.raises(ValueError, match='length 8 exactly'):
    tasks.get('parity').nearest_valid_length(7)


# ---- errors ------------------------------------------------------------------------

def test_unknown_task():
  with pytest.raises(ValueError, match="unknown task 'foo'; valid tasks: add, addition, badd"):
    tasks.get('foo')


@pytest.mark.parametrize('name, params, message', [
    ('copy', {'alphabet_size': 1}, r'copy: alphabet_size must be an integer in \[2, 62\], got 1'),
    ('sort', {'alphabet_size': 63}, r'alphabet_size must be an integer in \[2, 62\], got 63'),
    ('copy', {'alphabet_size': 2.0}, r'alphabet_size must be an integer'),
    ('addition', {'base': 3}, r'addition: base must be one of \[2, 4, 10\], got 3'),
    ('incr', {'base': 16}, r'base must be one of \[2, 4, 10\]'),
    ('xor', {'n_bits': 1}, r'xor: n_bits must be an integer >= 2, got 1'),
    ('badd', {'base': 2}, r'badd: unknown parameter\(s\) base; accepted: pad_result, layout'),
    ('badd', {'layout': 'diagonal'}, r"layout 'diagonal'; valid layouts: sequential, stacked"),
    ('copy', {'alphbet_size': 3}, r'unknown parameter\(s\) alphbet_size; accepted: alphabet_size'),
    ('parity', {'bits': 3}, r'accepted: n_bits'),
])
def test_bad_params(name, params, message):
  with pytest.raises(ValueError, match=message):
    tasks.get(name, **params)


@pytest.mark.parametrize('name, params', [
    ('badd', {'base': 2}), ('bmul,qmul', {'alphabet_size': 3})])
def test_unknown_parameter_has_its_own_type(name, params):
  # state.build_task adds a hint for this case only, by type (not by matching the message)
  with pytest.raises(tasks.UnknownParameterError):
    tasks.get(name, **params)
  with pytest.raises(ValueError) as info:
    tasks.get('badd', layout='diagonal')  # a bad value is not an unknown parameter
  assert not isinstance(info.value, tasks.UnknownParameterError)


@pytest.mark.parametrize('name, length, message', [
    ('badd', 40, 'badd needs odd length >= 3, got 40'),
    ('mul', 1, 'mul needs odd length >= 3, got 1'),
    ('search', 3, 'search needs length >= 4, got 3'),
    ('kvsort', 1, 'kvsort needs length >= 2, got 1'),
    ('incr', 1, 'incr needs length >= 2, got 1'),
    ('copy', 0, 'copy needs length >= 1, got 0'),
    ('xor', 3, 'xor needs length 2 exactly, got 3'),
    ('copy', 4.0, 'copy needs length >= 1, got 4.0'),
])
def test_invalid_length(name, length, message):
  with pytest.raises(ValueError, match=message):
    tasks.get(name).sample(0, 2, length)


@pytest.mark.parametrize('seed, batch_size, message', [
    (-1, 2, 'seed must be a non-negative int'),
    ((1, -2), 2, 'seed must be a non-negative int or a non-empty tuple'),
    ('a', 2, 'seed must be'),
    (0, 0, r'copy: batch_size must be an integer >= 1, got 0'),
])
def test_bad_seed_or_batch(seed, batch_size, message):
  with pytest.raises(ValueError, match=message):
    tasks.get('copy').sample(seed, batch_size, 5)


def test_encode_decode_errors():
  task = tasks.get('badd')
  assert task.decode(task.encode('10+01')) == '10+01'
  with pytest.raises(ValueError, match=r"badd: unknown symbol '2' in '12\+01'; symbols are '_01\+'"):
    task.encode('12+01')
  with pytest.raises(ValueError, match=r'id 4 out of range \[0, 3\]'):
    task.decode([1, 4])
  with pytest.raises(ValueError, match='1-D sequence'):
    task.decode(np.zeros((2, 2), np.int32))


@pytest.mark.parametrize("name", ["badd", "add", "bmul"])
def test_pad_result_ends_the_target_after_its_last_significant_digit(name):
  """The DNGPU reference's addition targets: digits up to the top nonzero one, then PAD."""
  padded, plain = tasks.get(name, pad_result=True), tasks.get(name)
  a, b = padded.sample(3, 64, 21), plain.sample(3, 64, 21)
  np.testing.assert_array_equal(a.inputs, b.inputs)
  for row_a, row_b in zip(a.targets, b.targets):
    digits = row_b - 1
    top = max([i for i, d in enumerate(digits) if d] or [0])
    np.testing.assert_array_equal(row_a[:top + 1], row_b[:top + 1])
    assert np.all(row_a[top + 1:] == 0)
  zeros = np.zeros((1, 3), np.int32)  # a zero result keeps one digit, as the reference's
  assert padded.decode(padded._assemble(zeros, zeros, 7)[1][0]) == "0______"


@pytest.mark.parametrize("name, kind", [("badd", None), ("qadd", "carry"), ("bmul", "zeros"),
                                        ("qmul", None), ("add", "propagate"), ("mul", None)])
def test_stacked_layout_aligns_the_operands_and_keeps_the_results(name, kind):
  """Cell i < k holds the pair (a_i, b_i), then the operator (and PAD for a product, L = 2k+1;
  a sum has L = k+1); the operands and results are those of 'a op b' with the same k."""
  stacked, sequential = tasks.get(name, layout="stacked"), tasks.get(name)
  k = 7
  short = k + 1 if stacked.op == "+" else 2 * k + 1
  draw = ((lambda t, n: t.sample(5, 32, n)) if kind is None
          else (lambda t, n: t.sample_hard(5, 32, n, kind)))
  s, q = draw(stacked, short), draw(sequential, 2 * k + 1)
  np.testing.assert_array_equal(s.targets, q.targets[:, :short])
  assert np.all(q.targets[:, short:] == 1)  # the sequential layout's extra cells: digit 0
  base = stacked.base
  for row_s, row_q in zip(s.inputs, q.inputs):
    text = stacked.decode(row_s)
    a, b = row_q[:k] - 1, row_q[k + 1:] - 1  # digit d has id d + 1
    pair = ((lambda u, v: "abcdefghijklmnop"[u * base + v]) if base < 10
            else (lambda u, v: f"({u}{v})"))
    pairs = "".join(pair(u, v) for u, v in zip(a, b))
    assert text == pairs + stacked.op + "_" * (short - k - 1)
    np.testing.assert_array_equal(stacked.encode(text), row_s)  # '(37)' reads as one symbol


def test_stacked_layout_example():
  task = tasks.get("badd", layout="stacked")
  assert task.symbols == ["_", "0", "1", "+", "a", "b", "c", "d"]
  assert task.valid_lengths(4) == [2, 3, 4] and not task.is_valid_length(1)
  x, y = np.array([[1, 1, 1, 0]]), np.array([[1, 1, 1, 1]])  # 7 + 15 = 22 = 10110 in binary
  inputs, targets = task._assemble(x, y, 5)
  assert task.decode(inputs[0]) == "dddb+"
  assert task.decode(targets[0]) == "01101"
  decimal = tasks.get("add", layout="stacked")  # 10 digits, '+', 100 pairs
  assert decimal.vocab_size == 1 + 10 + 1 + 100 and decimal.symbols[-1] == "(99)"
  inputs, targets = decimal._assemble(np.array([[8, 9]]), np.array([[7, 0]]), 3)  # 98 + 7
  assert decimal.decode(inputs[0]) == "(87)(90)+" and decimal.decode(targets[0]) == "501"
