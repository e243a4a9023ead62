"""The FLAN task-building API: one source + one template family -> every FLAN format.

  names = register_flan_task("arith", {"train": rows, "validation": val_rows}, TEMPLATES,
                             rationale_key="rationale", metrics=("exact_match",))
  # -> ["arith_zsopt", "arith_zsnoopt", "arith_fsopt", "arith_fsnoopt",
  #     "arith_zscot", "arith_fscot"], each a seqio.Task with features inputs/targets.
  register_mixture("my_mix", names, cap=30_000)   # examples-proportional, capped per task

How an example is rendered (templates, options, few-shot, budgets): `render.py`. This
module keeps registration: the catalogue, the seqio tasks of each format, mixtures.

Each registered family has a `TaskInfo` in a module-level catalogue: `get_task_info(name)`
(family or variant name) and `list_tasks(collection)`.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import itertools
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import seqio
import tensorflow as tf

from flan_jax.tasks import metrics as metrics_lib
from flan_jax.tasks import cache_reader, render
from flan_jax.tasks import sources
from flan_jax.tasks import templates as tpl
from flan_jax.tasks import vocab as vocab_lib
# Re-exported: what callers of this module used before rendering moved to render.py.
from flan_jax.tasks.render import DEFAULT_INPUTS_LENGTH  # noqa: F401
from flan_jax.tasks.render import FEWSHOT_MARGIN  # noqa: F401
from flan_jax.tasks.render import RenderedExample
from flan_jax.tasks.render import RenderedSource
from flan_jax.tasks.render import fewshot_budget  # noqa: F401

_NAME = re.compile(r"^[\w.:]+$")


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """Catalogue record of one task family (all of its format variants)."""
  name: str
  collection: str
  source: str
  category: str
  language: str
  splits: tuple[str, ...]
  metrics: tuple[str, ...]
  formats: tuple[str, ...]
  task_names: tuple[str, ...]
  num_templates: int


_CATALOGUE: dict[str, TaskInfo] = {}
_VARIANTS: dict[str, tuple[render.Renderer, tpl.Format]] = {}


def variant(task_name: str) -> tuple[render.Renderer, tpl.Format] | None:
  """(renderer, format) of a FLAN task variant registered by `register_flan_task`, else None."""
  return _VARIANTS.get(task_name)


def _applicable_formats(has_rationales: bool, has_train: bool,
                        opt_without_options: bool = True) -> list[str]:
  """Few-shot needs a train split to draw exemplars from. A task without options has
  "opt" variants only when it has two or more templates: they then draw their templates
  apart from the "noopt" ones (see `render.Renderer.template_indices`)."""
  opt = ["zsopt"] if opt_without_options else []
  names = opt + ["zsnoopt"]
  if has_train:
    names += (["fsopt"] if opt_without_options else []) + ["fsnoopt"]
  if has_rationales:
    names += ["zscot"] + (["fscot"] if has_train else [])
  return names


# The task classes every FLAN variant and sampled mixture is registered with: with use_cached
# they read `flan-jax data cache` output (checked first); without, few-shot prompts fit the
# lengths seqio asks for.


class FlanVariantTask(seqio.Task):
  """A FLAN variant: with use_cached, the cache is checked (present, same lengths and
  vocabulary) before seqio reads it."""

  def get_dataset(self, sequence_length=None, split="train", use_cached=False, **kwargs):  # pylint: disable=arguments-differ
    if use_cached:
      cache_reader.check_member(self, sequence_length, split)
    return seqio.Task.get_dataset(cache_reader.fitted_task(self, sequence_length), sequence_length, split=split,
                                  use_cached=use_cached, **kwargs)

class SampledMixtureTask(seqio.Task):
  """A sampled Flan mixture: with use_cached, its members are read from the cache
  (`sampled_dataset`) and the steps after tokenization run as without it."""

  def get_dataset(self, sequence_length=None, split="train", use_cached=False, shuffle=True,  # pylint: disable=arguments-differ
                  shuffle_buffer_size=None, seed=None, shard_info=None, num_epochs=1,
                  trim_output_features=True, try_in_mem_cache=True):
    if not use_cached:
      return seqio.Task.get_dataset(cache_reader.fitted_task(self, sequence_length), sequence_length, split=split,
                                    use_cached=False, shuffle=shuffle,
                                 shuffle_buffer_size=shuffle_buffer_size, seed=seed, shard_info=shard_info,
                                 num_epochs=num_epochs, trim_output_features=trim_output_features,
                                 try_in_mem_cache=try_in_mem_cache)
    ds = cache_reader.sampled_dataset(self, sequence_length, split, seed, shard_info)
    if num_epochs != 1:
      ds = ds.repeat(num_epochs)
    # The cache holds what `tokenize` (the first step) gives; the rest runs as without it.
    if self.preprocessors[0] is not seqio.preprocessors.tokenize:
      raise cache_reader.CacheError(f"{self.name}: cached mixtures expect `tokenize` as their first preprocessor")
    ds = self._preprocess_dataset(ds, self.preprocessors[1:], sequence_length=sequence_length)  # pylint: disable=protected-access
    ds = self._validate_preprocessing(ds)  # pylint: disable=protected-access
    if trim_output_features:
      ds = self._trim_output_features(ds, sequence_length=sequence_length)  # pylint: disable=protected-access
    if shuffle:
      ds = ds.shuffle(shuffle_buffer_size or self._shuffle_buffer_size, seed=seed)  # pylint: disable=protected-access
    return ds.prefetch(tf.data.experimental.AUTOTUNE)


def _replace_task(name: str, **kwargs) -> None:
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(name, **kwargs)


def register_flan_task(
    name: str,
    source,
    templates: Sequence[tpl.Template],
    *,
    metrics: Sequence = (),
    collection: str = "",
    category: str = "",
    language: str = "en",
    dataset: str = "",
    options_key: str | None = None,
    rationale_key: str | None = None,
    id_key: str | None = None,
    num_fewshot: int = 3,
    max_input_tokens: int | None = None,
    inputs_length: int = DEFAULT_INPUTS_LENGTH,
    varied_options: bool = False,
    fewshot_patterns: Sequence[tpl.FewShotPattern] = (tpl.PLAIN,),
    xshot: bool = False,
    demonstrations_key: str | None = None,
    fewshot_templates: Sequence[tpl.Template] = (),
    instance_templates: Sequence[tpl.Template] = (),
    num_opt_templates: int | None = None,
    fewshot_pool_size: int = 1000,
    seed: int = 0,
    vocabulary: seqio.Vocabulary | None = None,
    splits: Sequence[str] = ("train", "validation"),
    formats: Sequence[str] | None = None,
    shuffle_buffer_size: int = 1000,
) -> list[str]:
  """Registers the FLAN format variants `{name}_{format}` of one task; returns their names.

  Args:
    name: family name; variants are `{name}_zsopt`, `_zsnoopt`, `_fsopt`, `_fsnoopt`, and
      with `rationale_key` also `_zscot`, `_fscot` (few-shot ones need a "train" split).
    source: a `seqio.DataSource`, a dict split -> list of example dicts (or a function
      yielding them), a dict split -> .jsonl/.tsv path(s), or a `sources.ExampleSource`.
    templates: the template family; each example uses one, chosen from `seed`.
    metrics: metric functions `(targets, predictions) -> dict` or names in
      `metrics.METRICS`; CoT variants score the answer after "So the answer is".
    collection, category, language, dataset: catalogue metadata (`dataset` defaults to
      the source's repr).
    options_key: example field with the answer options (list of str), shown in "opt"
      and CoT formats.
    rationale_key: example field with a step-by-step rationale; enables the CoT formats.
    id_key: example field with a stable id used for the template/exemplar choice
      (default: the example's split and position).
    num_fewshot: exemplars per few-shot prompt (the fixed-count format).
    max_input_tokens: exemplars are added only while the prompt plus EOS fits; an
      example with none is left out of the few-shot variants (None: FLAN's 1,920/2,048
      of `inputs_length`).
    inputs_length: the input length few-shot prompts are fitted to when
      `max_input_tokens` is None and a dataset is asked for without a sequence length;
      a training run's datasets are fitted to its TASK_FEATURE_LENGTHS (seqio passes
      them to `get_dataset`).
    varied_options: draw the options block's header and item style per example (per
      prompt in few-shot), with label targets for labelled styles; False: the fixed
      "OPTIONS:" list with option texts as targets (what evaluation tasks want).
    fewshot_patterns: prefix/separator patterns of the few-shot prompts, one drawn per
      example.
    xshot: FLAN's few-shot forms of its Flan 2021 and T0 tasks: with options, half the
      prompts take `num_fewshot` exemplars in the format's other templates in turn, half
      are x-shot; without options, x-shot only. x-shot: of 25 consecutive exemplars whose
      templates rotate, those with the query's template (`render.xshot_count`); those left
      with none are dropped, as in FLAN.
    demonstrations_key, fewshot_templates: few-shot from the example's own list of
      demonstrations (dicts of input, output, explanation; NIv2's positive examples)
      rendered into `{demonstrations}` of `fewshot_templates`, instead of exemplars: one
      positive example with its explanation. With `instance_templates`, half the few-shot
      prompts show instead two other instances of the task (input, output) in them (NIv2).
    num_opt_templates: the first this many `templates` serve the "opt" formats and the
      rest the "noopt" ones (FLAN's two template sets); None: all serve both (without
      options, even / odd positions).
    fewshot_pool_size: how many train examples exemplars are drawn from (a uniform,
      seeded sample of the whole train split).
    seed: seed of the template and exemplar choice.
    vocabulary: of both features; default `vocab.default_vocabulary()`.
    splits: splits to expose, a subset of the source's.
    formats: subset of the applicable formats to register (default: all of them).
    shuffle_buffer_size: of each variant's seqio Task.
  """
  if not _NAME.match(name):
    raise ValueError(f"task name {name!r} may only hold letters, digits, '_', '.', ':'")
  templates = tuple(templates)
  if not templates or not all(isinstance(t, tpl.Template) for t in templates):
    raise TypeError(f"task {name!r}: templates must be a non-empty sequence of Template")
  if num_fewshot < 0:
    raise ValueError(f"task {name!r}: num_fewshot must be >= 0, got {num_fewshot}")
  example_source = sources.as_example_source(source)
  missing = [s for s in splits if s not in example_source.splits]
  if missing:
    raise ValueError(f"task {name!r}: source {example_source!r} has no split(s) {missing}; "
                     f"pass splits= from {list(example_source.splits)}")
  has_train = "train" in example_source.splits
  applicable = _applicable_formats(rationale_key is not None, has_train,
                                   options_key is not None or len(templates) >= 2)
  formats = list(applicable if formats is None else formats)
  bad = [f for f in formats if f not in applicable]
  if bad:
    raise ValueError(f"task {name!r}: format(s) {bad} do not apply; applicable: {applicable} "
                     "(CoT needs rationale_key, few-shot needs a 'train' split)")
  vocabulary = vocabulary or vocab_lib.default_vocabulary()
  metric_fns = [metrics_lib.resolve_metric(m) for m in metrics]
  renderer = render.Renderer(
      name, example_source, templates, options_key=options_key, rationale_key=rationale_key,
      id_key=id_key, num_fewshot=num_fewshot, fewshot_pool_size=fewshot_pool_size,
      max_input_tokens=max_input_tokens, seed=seed, vocabulary=vocabulary,
      varied_options=varied_options, fewshot_patterns=fewshot_patterns, xshot=xshot,
      demonstrations_key=demonstrations_key, fewshot_templates=fewshot_templates,
      instance_templates=instance_templates,
      num_opt_templates=num_opt_templates, inputs_length=inputs_length)
  output_features = {
      "inputs": seqio.Feature(vocabulary, add_eos=True),
      "targets": seqio.Feature(vocabulary, add_eos=True),
  }
  if name in _CATALOGUE:
    remove_flan_task(name)  # re-registration replaces every old variant
  names = []
  for format_name in formats:
    fmt = tpl.FORMATS[format_name]
    task_name = f"{name}_{format_name}"
    _replace_task(
        task_name,
        task_cls=FlanVariantTask,  # USE_CACHED_TASKS: checks the cache seqio reads
        source=RenderedSource(renderer, fmt, splits),
        output_features=output_features,
        preprocessors=[
            seqio.preprocessors.tokenize,
            seqio.CacheDatasetPlaceholder(),
            seqio.preprocessors.append_eos_after_trim,
        ],
        postprocess_fn=metrics_lib.cot_answer if fmt.cot else metrics_lib.strip_text,
        metric_fns=metric_fns,
        shuffle_buffer_size=shuffle_buffer_size,
    )
    _VARIANTS[task_name] = (renderer, fmt)
    names.append(task_name)
  _CATALOGUE[name] = TaskInfo(
      name=name, collection=collection, source=dataset or repr(example_source),
      category=category, language=language, splits=tuple(splits),
      metrics=tuple(metrics_lib.metric_name(m) for m in metrics), formats=tuple(formats),
      task_names=tuple(names), num_templates=len(templates))
  return names


def remove_flan_task(name: str) -> None:
  """Unregisters a family and all of its variants (from seqio and the catalogue)."""
  info = get_task_info(name)
  for task_name in info.task_names:
    if task_name in seqio.TaskRegistry.names():
      seqio.TaskRegistry.remove(task_name)
    _VARIANTS.pop(task_name, None)
  if info.name in seqio.MixtureRegistry.names():  # its family mixture (register_family_mixture)
    seqio.MixtureRegistry.remove(info.name)
  del _CATALOGUE[info.name]


def get_task_info(name: str) -> TaskInfo:
  """The catalogue record of a family, by its name or the name of one of its variants."""
  if name in _CATALOGUE:
    return _CATALOGUE[name]
  if name in _VARIANTS:
    return _CATALOGUE[_VARIANTS[name][0].name]
  close = difflib.get_close_matches(name, list(_CATALOGUE) + list(_VARIANTS), n=5, cutoff=0.6)
  hint = f" Did you mean: {', '.join(close)}?" if close else ""
  raise KeyError(f"no FLAN task {name!r} in the catalogue.{hint} Import the module that registers "
                 f"it (e.g. flan_jax.tasks.embedded); {len(_CATALOGUE)} families are registered")


def list_tasks(collection: str | None = None, *, variants: bool = False) -> list[str]:
  """Sorted family names (or, with `variants`, seqio task names), optionally of one
  collection."""
  infos = [i for i in _CATALOGUE.values() if collection is None or i.collection == collection]
  if variants:
    return sorted(n for i in infos for n in i.task_names)
  return sorted(i.name for i in infos)


def register_family_mixture(name: str) -> seqio.Mixture | None:
  """A family name (as `flan-jax tasks list` prints it) as the seqio Mixture of its format
  variants at equal rates, registered under that name on first use; None if `name` is no
  registered family."""
  if name not in _CATALOGUE:
    return None
  if name not in seqio.MixtureRegistry.names():
    register_mixture(name, list(_CATALOGUE[name].task_names), default_rate=1.0)
  return seqio.get_mixture_or_task(name)


def list_mixtures() -> list[str]:
  """Sorted names of the registered mixtures: seqio Mixtures and sampled mixtures, without the
  per-family mixtures `register_family_mixture` adds."""
  names = set(seqio.MixtureRegistry.names()) - set(_CATALOGUE)
  return sorted(names | {n for n in _SAMPLED if n in seqio.TaskRegistry.names()})


def accepted_names() -> list[str]:
  """Every name a task is accepted as: variants and other seqio tasks, families, mixtures."""
  return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()) | set(_CATALOGUE))


def render_examples(task_name: str, split: str = "validation",
                    limit: int | None = None) -> list[RenderedExample]:
  """The first `limit` rendered examples of a registered variant, in python (no tf.data):
  for inspection, tests and `flan-jax tasks show`."""
  if task_name not in _VARIANTS:
    get_task_info(task_name)  # raises the helpful error for unknown names
    raise KeyError(f"{task_name!r} is a family; pick one of its variants "
                   f"{list(get_task_info(task_name).task_names)}")
  renderer, fmt = _VARIANTS[task_name]
  out = []
  for r in renderer.render(split, fmt):
    if limit is not None and len(out) >= limit:
      break
    out.append(r)
  return out


class SampledMixtureSource(seqio.DataSource):
  """Many FLAN variants as one stream, sampled in python: the fast path for big mixtures.

  A seqio Mixture of N tasks builds N tf.data pipelines (each with its own python
  generator) before the first example; for the ~7,400 variants of Flan 2022 that alone
  takes minutes. This source instead draws, per example, a member with probability
  proportional to its rate and takes that member's next rendered example, all inside one
  generator. Members are opened lazily, on their first draw.

  * "train": an endless stream; a member that runs out starts again from its first
    example (as a repeated seqio Mixture would). Each data shard (host) draws with its
    own seed.
  * other splits: every example of every member that has the split, once; exhausted
    members leave the draw. Shards take every n-th example.
  """

  def __init__(self, name: str, tasks: Sequence, rate: Callable,
               splits: Sequence[str] = ("train", "validation")):
    """`tasks`: variant or sampled-mixture names, or (name, rate) pairs; `rate(task)`
    gives the rate of a variant listed without one."""
    super().__init__(splits=splits, caching_permitted=False)
    self._name = name
    self._tasks = [(t, None) if isinstance(t, str) else tuple(t) for t in tasks]
    self._rate = rate
    self._inputs_length: int | None = None  # few-shot prompts fit this input length (None: each task's)

  def for_inputs_length(self, inputs_length: int | None) -> "SampledMixtureSource":
    """The same mixture with its members' few-shot prompts fitted to `inputs_length` tokens."""
    other = copy.copy(self)
    other._inputs_length = inputs_length  # pylint: disable=protected-access
    return other

  def _budgets(self, members) -> dict[str, int]:
    return {name: _VARIANTS[name][0].budget_for(self._inputs_length) for name, _ in members}

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [split]

  def num_input_examples(self, split: str) -> int | None:
    return None  # endless for "train"; unknown (without reading every task) otherwise

  def member_names(self, split: str | None = None) -> list[str]:
    """Every variant drawn from (that has `split`), nested sampled mixtures expanded;
    reads no data."""
    names = [m for t, _ in self._tasks
             for m in (_SAMPLED[t].member_names() if t in _SAMPLED else [t])]
    return [n for n in names if split is None or split in _VARIANTS[n][0].source.splits]

  @functools.cache  # pylint: disable=method-cache-max-size-none
  def rated_members(self) -> tuple[tuple[str, float], ...]:
    """(variant, rate) of every member, a nested sampled mixture's members scaled to sum
    to its given rate. Examples-proportional rates read the members' example counts."""
    out = []
    for name, r in self._tasks:
      if name in _SAMPLED:
        sub = _SAMPLED[name].rated_members()
        total = sum(x for _, x in sub)
        share = total if r is None else r
        out += [(n, share * x / total) for n, x in sub] if total else []
      else:
        out.append((name, self._rate(seqio.get_mixture_or_task(name)) if r is None else r))
    return tuple(out)

  def members(self, split: str) -> list[tuple[str, float]]:
    """(variant, rate) of the members that have `split` and a positive rate."""
    out = [(n, float(r)) for n, r in self.rated_members()
           if r > 0 and split in _VARIANTS[n][0].source.splits]
    if not out:
      raise ValueError(f"mixture {self._name!r} has no task with a {split!r} split")
    return out

  def _stream(self, members, split: str, seed: int, budgets=None) -> Iterator[RenderedExample]:
    for _, example in self._tagged_stream(members, split, seed, budgets=budgets):
      yield example

  def sample(self, n: int, *, split: str = "train",
             seed: int = 0) -> list[tuple[str, RenderedExample]]:
    """The first `n` (variant name, example) of the stream this mixture trains on (shard
    0 of the given seed), in python: what `flan-jax data stats` measures. Few-shot prompts
    fit this source's input length (`for_inputs_length`)."""
    members = self.members(split)
    stream = self._tagged_stream(members, split, tpl.stable_hash(self._name, split, seed, 0),
                                 budgets=self._budgets(members))
    return [(members[i][0], ex) for i, ex in itertools.islice(stream, n)]

  def groups(self) -> dict[str, str]:
    """Variant -> the name of the top-level member (sub-mixture or variant) it is in."""
    out = {}
    for name, _ in self._tasks:
      for m in (_SAMPLED[name].member_names() if name in _SAMPLED else [name]):
        out[m] = name
    return out

  def _tagged_stream(self, members, split: str, seed: int, opener=None, budgets=None):
    """(member index, example) drawn by rate; `opener(variant)` gives a member's examples
    from the start (default: rendered; `tasks.cache` reads them from a cache instead);
    `budgets`: variant -> few-shot budget (default: each
    renderer's own when a member starts)."""
    endless = split == "train"
    rng = np.random.default_rng(seed)
    p = np.array([r for _, r in members])
    p /= p.sum()
    live = len(members)
    iters: dict[int, Iterator[RenderedExample]] = {}

    def restart(i):
      if opener is not None:
        iters[i] = iter(opener(members[i][0]))
      else:
        renderer, fmt = _VARIANTS[members[i][0]]
        iters[i] = renderer.render(split, fmt, budget=(budgets or {}).get(members[i][0]))
      return next(iters[i], None)

    while live:
      for i in rng.choice(len(members), size=256, p=p):
        example = next(iters[i], None) if i in iters else restart(i)
        if example is None and endless:
          example = restart(i)
          if example is None:
            raise ValueError(f"mixture {self._name!r}: task {members[i][0]!r} has no "
                             f"{split!r} examples")
        if example is None:  # exhausted: leave the draw and redraw with the others
          live -= 1
          p[i] = 0.0
          if live:
            p /= p.sum()
          break
        yield int(i), example

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed=None,
                  shard_info=None, *, sequence_length=None, use_cached=False, num_epochs=1):
    del shuffle, sequence_length, use_cached, num_epochs
    if split not in self.splits:
      raise ValueError(f"mixture {self._name!r} has no split {split!r}; it has "
                       f"{list(self.splits)}")
    members = self.members(split)  # fail now (missing data) rather than inside tf.data
    endless = split == "train"  # then every shard draws its own stream, none is sliced
    index = shard_info.index if shard_info and endless else 0
    stream_seed = tpl.stable_hash(self._name, split, 0 if seed is None else int(seed), index)
    budgets = self._budgets(members)
    return render.rendered_dataset(lambda: self._stream(members, split, stream_seed, budgets),
                             None if endless else shard_info)


_SAMPLED: dict[str, SampledMixtureSource] = {}


def register_sampled_mixture(name: str, tasks: Sequence, *, default_rate: float | None = None,
                             cap: int | None = None, splits=("train", "validation"),
                             shuffle_buffer_size: int = 1000) -> seqio.Task:
  """Registers `name` as one seqio Task sampling its members in python (see
  `SampledMixtureSource`); the same arguments and rates as `register_mixture`, for
  mixtures of hundreds or thousands of FLAN variants. Members are variants registered by
  `register_flan_task` or other sampled mixtures (nested with their given rate).
  Numbers of examples (for examples-proportional rates) are read when a dataset is built.
  """
  listed = [t if isinstance(t, str) else t[0] for t in tasks]
  unknown = [t for t in listed if t not in _VARIANTS and t not in _SAMPLED]
  if unknown:
    raise ValueError(f"sampled mixture {name!r} names {unknown[:10]}, which are neither FLAN "
                     "task variants nor sampled mixtures; register them first")
  if not listed:
    raise ValueError(f"sampled mixture {name!r} has no members")
  rate = examples_rate(cap) if default_rate is None else (lambda _: default_rate)
  source = SampledMixtureSource(name, tasks, rate, splits)
  features = seqio.get_mixture_or_task(listed[0]).output_features
  _replace_task(
      name, source=source, output_features=features,
      task_cls=SampledMixtureTask,  # USE_CACHED_TASKS reads `flan-jax data cache`'s files
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      postprocess_fn=metrics_lib.strip_text, metric_fns=[],
      shuffle_buffer_size=shuffle_buffer_size)
  _SAMPLED[name] = source
  return seqio.get_mixture_or_task(name)


def is_sampled_mixture(name: str) -> bool:
  return name in _SAMPLED and name in seqio.TaskRegistry.names()


def _sampled(name: str) -> SampledMixtureSource:
  if name not in _SAMPLED:
    raise KeyError(f"{name!r} is not a sampled mixture; known: {sorted(_SAMPLED)}")
  return _SAMPLED[name]


def sampled_mixture_members(name: str, split: str = "train") -> list[tuple[str, float]]:
  """The (variant, rate) pairs a sampled mixture draws from (reads example counts)."""
  return _sampled(name).members(split)


def sampled_mixture_names() -> list[str]:
  """Names of the registered sampled mixtures."""
  return sorted(n for n in _SAMPLED if n in seqio.TaskRegistry.names())


def sampled_mixture(name: str) -> SampledMixtureSource:
  """The source of a registered sampled mixture (see `SampledMixtureSource.sample`)."""
  return _sampled(name)


def sampled_mixture_tasks(name: str, split: str | None = None) -> list[str]:
  """The variants a sampled mixture draws from (that have `split`); reads no data."""
  return _sampled(name).member_names(split)


def register_eval_task(name: str, rows: Callable[[], list[dict]], *, vocabulary=None) -> str:
  """Registers one evaluation task whose "validation" examples are `rows()`: dicts of
  `inputs`, `targets` (str), `options`, `answers` (lists of str) and, for a few-shot prompt
  kept in parts, `prefix`, `shots` (list of str) and `query` with inputs = prefix + shots +
  query (without them: prefix "", no shots, query = inputs). `rows` is called when the
  dataset is built, so registering reads nothing."""
  def ragged(lists):
    return tf.ragged.constant(lists, dtype=tf.string, row_splits_dtype=tf.int32)

  def dataset_fn(split, shuffle_files=False, seed=None):
    del split, shuffle_files, seed
    data = rows()
    if not data:
      raise ValueError(f"task {name!r} has no examples")
    return tf.data.Dataset.from_tensor_slices({
        "inputs": [r["inputs"] for r in data], "targets": [r["targets"] for r in data],
        "options": ragged([r["options"] for r in data]), "answers": ragged([r["answers"] for r in data]),
        "prefix": [r.get("prefix", "") for r in data], "shots": ragged([r.get("shots", []) for r in data]),
        "query": [r.get("query", r["inputs"]) for r in data]})

  vocabulary = vocabulary or vocab_lib.default_vocabulary()
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(
      name, source=seqio.FunctionDataSource(dataset_fn, splits=("validation",)),
      output_features={"inputs": seqio.Feature(vocabulary, add_eos=True),
                       "targets": seqio.Feature(vocabulary, add_eos=True)},
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      metric_fns=[])
  return name


def _examples_rate(task_or_mixture, cap: int | None, split: str = "train") -> float:
  if isinstance(task_or_mixture, seqio.Mixture):
    return sum(_examples_rate(t, cap, split) for t in task_or_mixture.tasks)
  n = task_or_mixture.num_input_examples(split)
  if n is None:
    raise ValueError(f"task {task_or_mixture.name!r} does not know its number of {split} "
                     "examples; give it an explicit rate as (name, rate)")
  return float(min(n, cap) if cap is not None else n)


def examples_rate(cap: int | None = None):
  """Examples-proportional mixing rate: `min(num_train_examples, cap)` per task."""
  return functools.partial(_examples_rate, cap=cap)


def register_mixture(name: str, tasks: Sequence, *, default_rate: float | None = None,
                     cap: int | None = None) -> seqio.Mixture:
  """Registers (replacing) a seqio Mixture of task or mixture names.

  tasks: names, or (name, rate) pairs whose rate overrides the default.
  default_rate: a constant rate; None means examples-proportional with `cap`
    (rate = min(number of train examples, cap)), as in FLAN.
  """
  unknown = [t if isinstance(t, str) else t[0] for t in tasks]
  unknown = [t for t in unknown
             if t not in seqio.TaskRegistry.names() and t not in seqio.MixtureRegistry.names()]
  if unknown:
    raise ValueError(f"mixture {name!r} names unregistered tasks {unknown[:10]}; import the "
                     "modules that register them first")
  rate = examples_rate(cap) if default_rate is None else default_rate
  # seqio takes a rate function for tasks but needs a number for a sub-mixture.
  entries = []
  for t in tasks:
    if isinstance(t, str) and t in seqio.MixtureRegistry.names():
      sub = seqio.get_mixture_or_task(t)
      t = (t, rate(sub) if callable(rate) else rate)
    entries.append(t)
  if name in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.remove(name)
  return seqio.MixtureRegistry.add(name, entries, default_rate=rate)
