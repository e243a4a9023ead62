"""Rendering FLAN examples: one example dict + a template -> the prompt a model sees.

A `Renderer` renders the examples of one task family in any FLAN format; `RenderedSource`
is the seqio DataSource of one (family, format) pair. `api.register_flan_task` builds them;
this module holds no registry.

How an example is rendered (see `templates.py` for the text of each format):
  * template: `templates[stable_hash(seed, name, key[, "noopt"]) % len(templates)]` over the
    templates of its format (`Renderer.template_indices`: FLAN's collections (`xshot`) render
    "opt" and "noopt" from one list, the latter without options; with `num_opt_templates`
    the two formats have separate sets; another task without options splits its templates
    so that its "opt" variants never repeat the "noopt" prompts), where `key` is the
    example's `id_key` field or "split:index"; the same choice in every process.
  * options (`varied_options`): header, item style and layout drawn from the same key in
    zero-shot prompts (a labelled style makes the target the label); few-shot prompts show
    FLAN's fixed "OPTIONS:" list with option texts as targets.
  * few-shot: a fixed-count prompt (`num_fewshot`) or, with `xshot`, FLAN's forms: with
    options half "mix" prompts (`num_fewshot` exemplars in the format's other templates, in
    turn) and half x-shot, without options x-shot only (`xshot_count`: of 25 consecutive
    exemplars whose templates rotate, those with the query's own template), in a prefix/separator pattern
    drawn from `fewshot_patterns`. Exemplars come from the task's own train split
    (`fewshot_pool_size` drawn uniformly from the whole split), in an order seeded by the key, never the example itself
    nor one whose prompt equals its prompt, rendered with the query's template (the "mix"
    form: the others); they are added only while the prompt plus EOS fits the budget (`budget_for`:
    `max_input_tokens`, else FLAN's 1,920/2,048 of `inputs_length`); an example with no
    exemplar that fits (or an x-shot draw of none) is left out of the few-shot variant.
    With `demonstrations_key` (NIv2) the few-shot form is, in equal shares, one of the
    example's own positive examples with its explanation (`fewshot_templates`), or two other
    instances of the task without explanations (`instance_templates`).
  * dialogs (a `turns` list) are written into `text` in a start string and speaker style
    drawn per example in zero-shot prompts, the fixed "DIALOG:" list in few-shot ones.
  * rendering runs in python inside the data source (lazily, one example at a time); the
    seqio preprocessors then are `tokenize` -> cache placeholder -> `append_eos_after_trim`.

The few-shot budget travels with the request for data: seqio hands every `get_dataset` the
run's `sequence_length`, and the task (`api.FlanVariantTask`, `api.SampledMixtureTask`) gives its source the budget for
that inputs length (`RenderedSource.for_inputs_length`); without one, the length the task was
registered with (default 2,048). Nothing about a run is stored on the renderer.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import seqio
import tensorflow as tf

from flan_jax.tasks import sources
from flan_jax.tasks import templates as tpl
from flan_jax.tasks.templates import DEFAULT_INPUTS_LENGTH, FEWSHOT_MARGIN, fewshot_budget  # noqa: F401


@dataclasses.dataclass(frozen=True)
class RenderedExample:
  """One prompt as the model sees it, with where its parts came from."""
  inputs: str
  targets: str
  index: int                        # position in its split
  template_index: int
  exemplar_indices: tuple[int, ...]  # positions in the train split (NIv2: its demonstrations)
  option_style: str = ""            # name of the options item style shown ("" none)
  label_target: bool = False        # the target is an option's label, e.g. "(B)"
  rationale: bool = False           # the prompt or target carries a rationale
  fewshot_mode: str = ""            # "fixed" | "xshot" | "demonstrations" | "instances" ("" zero-shot)
  exemplars_wanted: int = 0         # exemplars drawn before length pruning (few-shot)


# FLAN's x-shot tasks (flan/v2/tasks.py, "_template_0to10_x_shot") draw 25 exemplars, each
# formatted with one of the dataset's templates in turn over a shuffled stream, keep those
# whose template is the query's (preprocessors.prune_fewshot_examples_by_template_idx),
# prune by length, and drop the examples left with none (filter_zero_shot_in_few_shot).
XSHOT_DRAWS = 25


def format_demonstration(i: int, demo: dict) -> str:
  """One NIv2 positive example as shown in a few-shot prompt, with its explanation."""
  text = f"Example {i + 1}:\nInput: {demo.get('input', '')}\nOutput: {demo.get('output', '')}"
  if demo.get("explanation"):
    text += f"\nWhy: {demo['explanation']}"
  return text


def xshot_count(num_templates: int, position: int, *key: object) -> int:
  """Exemplars of one x-shot prompt before length pruning, FLAN's rule: its templates are
  given to consecutive training examples in turn (0, 1, ..., n-1, 0, ...), an x-shot prompt
  takes `XSHOT_DRAWS` (25) consecutive exemplars, and keeps those with the query's template
  (`position` of `num_templates`). The window's start is seeded by `key`. Ten templates:
  2 or 3, never 0; one template: all 25; more than 25 templates: 0 or 1 (0: dropped)."""
  start = tpl.stable_hash(*key, "xshot") % num_templates
  return sum((start + d) % num_templates == position for d in range(XSHOT_DRAWS))


class Renderer:
  """Renders the examples of one task family in any of its formats."""

  def __init__(self, name, source, templates, *, options_key, rationale_key, id_key,
               num_fewshot, fewshot_pool_size, max_input_tokens, seed, vocabulary,
               varied_options=False, fewshot_patterns=(tpl.PLAIN,), xshot=False,
               demonstrations_key=None, fewshot_templates=(), instance_templates=(),
               num_opt_templates=None, inputs_length=DEFAULT_INPUTS_LENGTH):
    self.name = name
    self.source = source
    self.templates = tuple(templates)
    self.options_key = options_key
    self.rationale_key = rationale_key
    self.id_key = id_key
    self.num_fewshot = num_fewshot
    self.fewshot_pool_size = fewshot_pool_size
    self.max_input_tokens = max_input_tokens
    self.seed = seed
    self.vocabulary = vocabulary
    self.varied_options = varied_options
    self.fewshot_patterns = tuple(fewshot_patterns) or (tpl.PLAIN,)
    self.xshot = xshot
    self.demonstrations_key = demonstrations_key
    self.fewshot_templates = tuple(fewshot_templates)
    self.instance_templates = tuple(instance_templates)
    self.num_opt_templates = num_opt_templates
    self.inputs_length = int(inputs_length)  # the default few-shot budget's: see `budget_for`

  @functools.cached_property
  def _pool(self) -> tuple[list[int], list[dict]]:
    """(positions in the train split, examples): `fewshot_pool_size` train examples drawn
    uniformly from the whole split (reservoir sampling, Li's algorithm L, seeded by the
    task), as FLAN's few-shot tasks draw exemplars from the whole shuffled split. One pass
    over the split, memory bounded by the pool size."""
    k = self.fewshot_pool_size
    rng = np.random.default_rng(tpl.stable_hash(self.seed, self.name, "pool"))
    positions, pool = [], []
    w = np.exp(np.log(rng.random()) / k)
    next_pick = k + int(np.floor(np.log(rng.random()) / np.log1p(-w)))
    for i, ex in enumerate(self.source.examples("train")):
      if i < k:
        positions.append(i)
        pool.append(ex)
      elif i == next_pick:
        slot = int(rng.integers(k))
        positions[slot], pool[slot] = i, ex
        w *= np.exp(np.log(rng.random()) / k)
        next_pick = i + 1 + int(np.floor(np.log(rng.random()) / np.log1p(-w)))
    order = sorted(range(len(pool)), key=positions.__getitem__)
    return [positions[o] for o in order], [pool[o] for o in order]

  @property
  def pool(self) -> list[dict]:
    """The train examples exemplars are drawn from (see `_pool`)."""
    return self._pool[1]

  def pool_position(self, j: int) -> int:
    """The position in the train split of pool example `j`."""
    return self._pool[0][j]

  def _key(self, example, split: str, index: int) -> str:
    return str(example[self.id_key]) if self.id_key else f"{split}:{index}"

  def template_indices(self, fmt: tpl.Format) -> tuple[int, ...]:
    """The templates `fmt` draws from. FLAN's collections (`xshot`) render both formats
    from one list, the "noopt" one with the options left out (FLAN's PATTERNS_NO_OPTIONS
    is its PATTERNS with `{options_}` removed), so x-shot rotates over the same ten
    templates in both. Other tasks without options split their templates (even / odd
    positions) so that their "opt" variants are not the "noopt" prompts again; CoT
    formats use them all."""
    n = len(self.templates)
    if self.num_opt_templates and not fmt.cot:  # two sets given by the caller
      k = self.num_opt_templates
      return tuple(range(k)) if fmt.options else tuple(range(k, n))
    if fmt.cot or self.options_key or self.xshot or n < 2:
      return tuple(range(n))
    return tuple(range(0, n, 2)) if fmt.options else tuple(range(1, n, 2))

  def _options(self, example, where):
    options = example.get(self.options_key) if self.options_key else None
    if options is not None and not (isinstance(options, (list, tuple))
                                    and all(isinstance(o, str) for o in options)):
      raise ValueError(f"task {self.name!r}, {where}: field {self.options_key!r} must be a "
                       f"list of strings, got {options!r}")
    return options

  def _render_one(self, template, example, fmt, where, style=tpl.FIXED_OPTIONS):
    rationale = example.get(self.rationale_key) if self.rationale_key else None
    turns = example.get(tpl.DIALOG_FIELD)
    if isinstance(turns, (list, tuple)) and "text" not in example:
      layout = (tpl.FIXED_DIALOG if fmt.fewshot else
                tpl.dialog_style(self.seed, self.name, len(turns), *turns[:2]))
      example = {**example, "text": tpl.dialog_text([str(t) for t in turns], layout)}
    try:
      return tpl.render(template, example, fmt, options=self._options(example, where),
                        rationale=rationale, style=style)
    except tpl.TemplateError as e:
      raise tpl.TemplateError(f"task {self.name!r}, {where}: {e}") from None

  def _candidates(self, key: str, n: int, want: int) -> Iterator[int]:
    """Every index in range(n) once, in a pseudo-random order seeded by `key`: first a
    few cheap hashed draws (enough for nearly every example), then a full permutation."""
    seen = set()
    for t in range(4 * want + 8):
      j = tpl.stable_hash(self.seed, self.name, key, "fewshot", t) % n
      if j not in seen:
        seen.add(j)
        yield j
    rng = np.random.default_rng(tpl.stable_hash(self.seed, self.name, key, "fewshot"))
    yield from (int(j) for j in rng.permutation(n) if int(j) not in seen)

  def _fits(self, text: str, budget: int | None) -> bool:
    if budget is None:
      return True
    if len(text.encode("utf-8")) + 2 <= budget:  # never more tokens than bytes (+ EOS)
      return True
    return len(self.vocabulary.encode(text)) + 1 <= budget  # +1 for EOS

  def _fitting(self, chosen, inputs, pattern, budget):
    """The leading exemplars of `chosen` that fit the budget with the query: exemplars
    are added only while the whole prompt fits. Counts each block's tokens once, then
    checks the joined prompt exactly (dropping from the end if the join tokenizes
    longer)."""
    def prompt(exemplars):
      return tpl.fewshot_prompt([(x, y) for _, x, y in exemplars], inputs, pattern)

    if budget is None or self._fits(prompt(chosen), budget):
      return list(chosen)
    count = lambda text: len(self.vocabulary.encode(text))
    total = count(pattern.query(inputs)) + 1
    kept = []
    for c in chosen:
      total += count(pattern.exemplar(c[1], c[2]) + pattern.separator)
      if total > budget:
        break
      kept.append(c)
    while kept and not self._fits(prompt(kept), budget):
      kept.pop()
    return kept

  def budget_for(self, inputs_length: int | None = None) -> int:
    """The few-shot budget for prompts of an `inputs_length`-token input (None: the length
    the task was registered with); a task registered with `max_input_tokens` keeps it."""
    return fewshot_budget(self.inputs_length if inputs_length is None else inputs_length, self.max_input_tokens)

  def _fewshot_plan(self, key: str, fmt: tpl.Format, num_templates: int,
                    position: int) -> tuple[str, int, tpl.FewShotPattern]:
    """(mode, number of exemplars wanted, pattern) of one few-shot prompt. For x-shot tasks
    (FLAN's Flan 2021 and T0 collections), as FLAN's mixtures build them: with options, half
    the prompts are the fixed-count "mix" form and half x-shot; without options, x-shot only
    (`xshot_count`; 0 means the example has no x-shot form, as FLAN's filter drops it).
    `position`: the query's template among the `num_templates` of its format."""
    h = tpl.stable_hash(self.seed, self.name, key, "plan")
    pattern = self.fewshot_patterns[(h >> 8) % len(self.fewshot_patterns)]
    if self.xshot and (not fmt.options or h % 2):
      return "xshot", xshot_count(num_templates, position, self.seed, self.name, key), pattern
    return "fixed", self.num_fewshot, pattern

  def _mix_templates(self, indices: Sequence[int], position: int) -> Callable[[int], tpl.Template]:
    """The template of exemplar k in FLAN's fixed-count "mix" form: the format's templates in
    turn after the query's, never the query's own (one template: that one)."""
    others = [indices[(position + d) % len(indices)] for d in range(1, len(indices))] or [indices[position]]
    return lambda k: self.templates[others[k % len(others)]]

  def _exemplars(self, template_of, fmt, key, split, index, query, query_inputs, want, style):
    """Up to `want` (train index, inputs, targets), never the query example (nor a train
    row equal to it) nor a prompt equal to the query's; exemplar k is rendered with
    `template_of(k)`."""
    pool = self.pool
    chosen = []
    for j in self._candidates(key, len(pool), want) if pool else ():
      if len(chosen) == want:
        break
      position = self.pool_position(j)
      if split == "train" and position == index:
        continue
      if (fmt.cot and not pool[j].get(self.rationale_key)) or pool[j] == query:
        continue
      x, y = self._render_one(template_of(len(chosen)), pool[j], fmt, f"train example {position}", style)
      if x == query_inputs:
        continue
      chosen.append((position, x, y))
    return chosen

  def _style(self, key: str):
    return tpl.option_style(self.seed, self.name, key) if self.varied_options \
        else tpl.FIXED_OPTIONS

  def render(self, split: str, fmt: tpl.Format, shard: tuple[int, int] | None = None,
             budget: int | None = None) -> Iterator[RenderedExample]:
    """The examples of `split` rendered in `fmt`, in source order. A few-shot example for
    which no exemplar fits the budget is left out of the few-shot variant. `shard=(k, n)`:
    only the examples at source positions k mod n (what `flan-jax data cache` writes).
    `budget`: the few-shot budget in tokens (default `budget_for()`, the registered length's)."""
    budget = (self.budget_for() if budget is None else int(budget)) if fmt.fewshot else None
    return self._render(split, fmt, shard, budget)

  def _render(self, split, fmt, shard, budget) -> Iterator[RenderedExample]:
    indices = self.template_indices(fmt)
    for index, example in enumerate(self.source.examples(split)):
      if shard is not None and index % shard[1] != shard[0]:
        continue
      key = self._key(example, split, index)
      if (fmt.fewshot and self.demonstrations_key and self.fewshot_templates
          and example.get(self.demonstrations_key)):
        r = self._render_demonstrations(example, fmt, key, split, index, budget)
        if r is not None:
          yield r
        continue
      # Each format draws its own template: the "opt" and "noopt" prompts of one example
      # differ even where both formats share the list.
      salt = () if fmt.options else ("noopt",)
      t = indices[tpl.stable_hash(self.seed, self.name, key, *salt) % len(indices)]
      template = self.templates[t]
      # Few-shot prompts show options as FLAN's few-shot templates do: the fixed "OPTIONS:" list
      # with option texts as targets, in the exemplars and the query alike.
      style = tpl.FIXED_OPTIONS if fmt.fewshot else self._style(key)
      where = f"{split} example {index}"
      inputs, targets = self._render_one(template, example, fmt, where, style)
      options = self._options(example, where)
      shown = fmt.options and bool(options) and not template.inverted
      plain = _plain_target(template, example)
      if shown and style.labels and len(options) > len(style.labels):
        style = dataclasses.replace(style, name="dash", item="-", labels=())
      info = dict(option_style=style.name if shown else "",
                  label_target=bool(shown and style.labelled and
                                    sum(o.strip() == plain.strip() for o in options) == 1),
                  rationale=bool(fmt.cot or tpl.RATIONALE_FIELD in template.fields))
      if not fmt.fewshot:
        yield RenderedExample(inputs, targets, index, t, (), **info)
        continue
      position = indices.index(t)
      mode, want, pattern = self._fewshot_plan(key, fmt, len(indices), position)
      if not want:
        continue  # an x-shot draw with no exemplar of the query's template: dropped
      if inputs.rstrip().endswith(":"):  # the template has its own answer prefix
        pattern = tpl.FewShotPattern("", "", pattern.x_y, pattern.separator)
      template_of = (self._mix_templates(indices, position) if self.xshot and mode == "fixed"
                     else lambda k, template=template: template)
      chosen = self._exemplars(template_of, fmt, key, split, index, example, inputs, want, style)
      kept = self._fitting(chosen, inputs, pattern, budget)
      if not kept:
        continue  # nothing fits next to the query (or no exemplar): not a few-shot example
      prompt = tpl.fewshot_prompt([(x, y) for _, x, y in kept], inputs, pattern)
      yield RenderedExample(prompt, targets, index, t, tuple(j for j, _, _ in kept),
                            fewshot_mode=mode, exemplars_wanted=want, **info)

  def _render_demonstrations(self, example, fmt, key, split, index, budget):
    """NIv2's few-shot forms, FLAN's two kinds at equal shares (with `instance_templates`):
    "demonstrations": the definition, one of the task's positive examples with its
    explanation, then the query; "instances": the definition, two other instances of the
    task from its train split (input and output, no explanation), then the query. An
    instance that does not fit is left out; None when nothing fits."""
    h = tpl.stable_hash(self.seed, self.name, key, "niv2")
    if self.instance_templates and h % 2 and self.pool:
      return self._render_instances(example, fmt, key, split, index, budget, h)
    demos = list(example.get(self.demonstrations_key) or ())
    t = (h >> 1) % len(self.fewshot_templates)
    d = (h >> 8) % len(demos)
    text = format_demonstration(0, demos[d])
    inputs, targets = self._render_one(self.fewshot_templates[t], {**example, "demonstrations": text}, fmt,
                                       f"{split} example {index}")
    if not self._fits(inputs, budget):
      return None
    return RenderedExample(inputs, targets, index, len(self.templates) + t, (d,), fewshot_mode="demonstrations",
                           exemplars_wanted=1)

  def _render_instances(self, example, fmt, key, split, index, budget, h):
    t = (h >> 1) % len(self.instance_templates)
    chosen = []
    for j in self._candidates(key, len(self.pool), 2):
      if len(chosen) == 2:
        break
      other = self.pool[j]
      if (split == "train" and self.pool_position(j) == index) or other.get("input") == example.get("input"):
        continue
      chosen.append(j)
    for k in range(len(chosen), 0, -1):
      text = "\n\n".join(f"Input: {self.pool[j].get('input', '')}\nOutput: {self.pool[j].get('output', '')}"
                         for j in chosen[:k])
      inputs, targets = self._render_one(self.instance_templates[t], {**example, "demonstrations": text}, fmt,
                                         f"{split} example {index}")
      if self._fits(inputs, budget):
        return RenderedExample(inputs, targets, index, len(self.templates) + len(self.fewshot_templates) + t,
                               tuple(self.pool_position(j) for j in chosen[:k]), fewshot_mode="instances",
                               exemplars_wanted=2)
    return None


def _plain_target(template, example) -> str:
  """The target as the template writes it (before an options label replaces it)."""
  if tpl.is_prerendered(example):
    template = tpl.PRERENDERED
  try:
    return template.targets.format_map({**example, tpl.OPTIONS_FIELD: ""})
  except (KeyError, IndexError, ValueError):
    return ""


# Examples rendered per python call amortize the tf.data <-> python hop; the first chunks
# are small so that a mixture of many tasks yields its first examples quickly.
_FIRST_CHUNK, _MAX_CHUNK = 8, 128
_SIGNATURE = {
    "inputs": tf.TensorSpec((None,), tf.string),
    "targets": tf.TensorSpec((None,), tf.string),
    "template_index": tf.TensorSpec((None,), tf.int32),
    "num_exemplars": tf.TensorSpec((None,), tf.int32),
}


def _chunks(rendered: Iterator[RenderedExample]) -> Iterator[dict]:
  """Columns of rendered examples as numpy arrays, in chunks of 8, 16, ... up to 128."""
  rows, size = [], _FIRST_CHUNK
  for r in rendered:
    rows.append(r)
    if len(rows) == size:
      yield _columns(rows)
      rows, size = [], min(2 * size, _MAX_CHUNK)
  if rows:
    yield _columns(rows)


def _columns(rows: list[RenderedExample]) -> dict:
  return {
      "inputs": np.array([r.inputs.encode("utf-8") for r in rows], dtype=object),
      "targets": np.array([r.targets.encode("utf-8") for r in rows], dtype=object),
      "template_index": np.array([r.template_index for r in rows], dtype=np.int32),
      "num_exemplars": np.array([len(r.exemplar_indices) for r in rows], dtype=np.int32),
  }


def rendered_dataset(rendered: Callable[[], Iterator[RenderedExample]],
                      shard_info=None) -> tf.data.Dataset:
  """A tf.data view of a python stream of rendered examples (built anew per iteration),
  optionally keeping every n-th example for one data shard."""
  ds = tf.data.Dataset.from_generator(lambda: _chunks(rendered()),
                                      output_signature=_SIGNATURE).unbatch()
  if shard_info and shard_info.num_shards > 1:
    ds = ds.shard(shard_info.num_shards, shard_info.index)
  return ds


class RenderedSource(seqio.DataSource):
  """A seqio DataSource of one format of one family: rendered `inputs`/`targets` strings
  (plus `template_index`, `num_exemplars`), produced lazily from the python renderer."""

  def __init__(self, renderer: Renderer, fmt: tpl.Format, splits: Sequence[str],
               inputs_length: int | None = None):
    super().__init__(splits=splits, caching_permitted=True)
    self._renderer = renderer
    self._format = fmt
    self._inputs_length = inputs_length  # few-shot prompts fit this input length (None: the task's)

  def for_inputs_length(self, inputs_length: int | None) -> "RenderedSource":
    """The same source with few-shot prompts fitted to `inputs_length` tokens."""
    return RenderedSource(self._renderer, self._format, self.splits, inputs_length)

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return False

  def list_shards(self, split: str) -> Sequence[str]:
    return [split]

  def num_input_examples(self, split: str) -> int:
    return self._renderer.source.num_examples(split)

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed=None,
                  shard_info=None, *, sequence_length=None, use_cached=False, num_epochs=1):
    """Examples in source order; the Task shuffles them (shuffle/seed are unused here)."""
    del shuffle, seed, sequence_length, use_cached, num_epochs
    if split not in self.splits:
      raise ValueError(f"task {self._renderer.name}_{self._format.name} has no split "
                       f"{split!r}; it has {list(self.splits)}")

    renderer, fmt = self._renderer, self._format
    budget = renderer.budget_for(self._inputs_length)
    if isinstance(renderer.source, sources.FILE_SOURCES):
      # A user's JSONL/TSV file is read through once here (counted, and remembered), so that a
      # malformed line is one error naming file and line, not one raised inside tf.data.
      renderer.source.num_examples(split)
    return rendered_dataset(lambda: renderer.render(split, fmt, budget=budget), shard_info)
