"""Prompt templates and the FLAN formats (zero-/few-shot x options/no options, chain of thought).

A `Template` is a pair of patterns with `{field}` placeholders filled from one example
(a dict of strings). The FLAN formats are derived from it, never written per task:

  zsnoopt  "{inputs}"                                        -> "{targets}"
  zsopt    "{inputs}\n\nOPTIONS:\n- a\n- b"                  -> "{targets}"
  fs*      "{ex1 inputs}\n{ex1 targets}\n\n...\n\n{inputs}"  -> "{targets}"
  zscot    "{inputs}\nLet's think step by step."             -> "{rationale} So the answer is {targets}."
  fscot    CoT exemplars joined the same way as fs*.
The CoT formats show the options block too when the task has options.

Pure python string work, no seqio or tensorflow: `api.py` runs it inside the data source.
"""
from __future__ import annotations

import dataclasses
import hashlib
import string
from collections.abc import Mapping, Sequence

FEWSHOT_SEPARATOR = "\n\n"   # between exemplars, and between the last exemplar and the query
EXEMPLAR_SEPARATOR = "\n"    # between an exemplar's inputs and its targets
COT_SEPARATOR = "\n"         # between the prompt and the CoT trigger
OPTIONS_HEADER = "OPTIONS:"
COT_TRIGGER = "Let's think step by step."
COT_TARGETS = "{rationale} So the answer is {target}."
# Placeholders filled by the renderer, not by the example.
OPTIONS_FIELD = "options"
RATIONALE_FIELD = "rationale"
TARGET_FIELD = "target"


class TemplateError(ValueError):
  """A template that cannot be parsed, or an example that lacks one of its fields."""


@dataclasses.dataclass(frozen=True)
class Format:
  """One FLAN format: the suffix of its task names and what its prompts contain."""
  name: str
  fewshot: bool
  options: bool
  cot: bool


ZSOPT = Format("zsopt", fewshot=False, options=True, cot=False)
ZSNOOPT = Format("zsnoopt", fewshot=False, options=False, cot=False)
FSOPT = Format("fsopt", fewshot=True, options=True, cot=False)
FSNOOPT = Format("fsnoopt", fewshot=True, options=False, cot=False)
ZSCOT = Format("zscot", fewshot=False, options=True, cot=True)
FSCOT = Format("fscot", fewshot=True, options=True, cot=True)
FORMATS: dict[str, Format] = {f.name: f for f in (ZSOPT, ZSNOOPT, FSOPT, FSNOOPT, ZSCOT, FSCOT)}


def _placeholders(pattern: str) -> tuple[str, ...]:
  try:
    return tuple(name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None)
  except ValueError as e:
    raise TemplateError(f"cannot parse template pattern {pattern!r}: {e}; write a literal brace "
                        "as '{{' or '}}'") from e


@dataclasses.dataclass(frozen=True)
class Template:
  """One instruction phrasing of a task.

  inputs: pattern of the prompt, e.g. "Sort these words: {words}{options}". `{options}`
    marks where the answer options go in the "opt" formats ("\\n\\nOPTIONS:\\n- a\\n- b");
    without it they are appended at the end. In the "noopt" formats it renders empty.
  targets: pattern of the answer, e.g. "{answer}".
  cot_trigger: the sentence appended to the prompt in the CoT formats.
  cot_targets: the CoT answer; `{rationale}` is the example's rationale and `{target}`
    the rendered `targets` pattern.
  """
  inputs: str
  targets: str
  cot_trigger: str = COT_TRIGGER
  cot_targets: str = COT_TARGETS

  def __post_init__(self):
    for pattern in (self.inputs, self.targets, self.cot_trigger):
      _placeholders(pattern)
    unknown = set(_placeholders(self.cot_targets)) - {RATIONALE_FIELD, TARGET_FIELD}
    if unknown:
      raise TemplateError(f"cot_targets {self.cot_targets!r} may only use {{{RATIONALE_FIELD}}} "
                          f"and {{{TARGET_FIELD}}}, not {sorted(unknown)}")

  @property
  def fields(self) -> tuple[str, ...]:
    """The example fields this template reads (without the renderer's own placeholders)."""
    names = _placeholders(self.inputs) + _placeholders(self.targets)
    return tuple(dict.fromkeys(n for n in names if n != OPTIONS_FIELD))


def _fill(pattern: str, fields: Mapping[str, object]) -> str:
  try:
    return pattern.format_map(fields)
  except KeyError as e:
    raise TemplateError(f"template {pattern!r} needs field {e.args[0]!r}, but the example only "
                        f"has {sorted(k for k in fields if k != OPTIONS_FIELD)}") from None
  except (IndexError, ValueError) as e:
    raise TemplateError(f"cannot fill template {pattern!r}: {e}") from None


def render_options(options: Sequence[str]) -> str:
  """The options block of the "opt" formats, with its leading blank line."""
  return "\n\n" + OPTIONS_HEADER + "".join(f"\n- {o}" for o in options)


PRERENDERED = Template("{inputs}", "{targets}")


def is_prerendered(example: Mapping[str, object]) -> bool:
  """Rows that are already prompts (`inputs`/`targets` strings: P3 prompt-tasks, the
  published Flan exports) are passed through as they are, in place of a template."""
  return isinstance(example.get("inputs"), str) and isinstance(example.get("targets"), str)


def render(template: Template, example: Mapping[str, object], fmt: Format, *,
           options: Sequence[str] | None = None, rationale: str | None = None) -> tuple[str, str]:
  """(inputs, targets) of one example in one format, without few-shot exemplars."""
  if is_prerendered(example):
    template = PRERENDERED
  options_text = render_options(options) if (fmt.options and options) else ""
  fields = {**example, OPTIONS_FIELD: options_text}
  inputs = _fill(template.inputs, fields)
  if options_text and OPTIONS_FIELD not in _placeholders(template.inputs):
    inputs += options_text
  targets = _fill(template.targets, fields)
  if fmt.cot:
    if not rationale:
      raise TemplateError(f"format {fmt.name!r} needs a rationale, but the example has none")
    inputs = inputs + COT_SEPARATOR + template.cot_trigger
    targets = _fill(template.cot_targets, {RATIONALE_FIELD: rationale, TARGET_FIELD: targets})
  return inputs, targets


def fewshot_prompt(exemplars: Sequence[tuple[str, str]], inputs: str) -> str:
  """The few-shot prompt: each exemplar's inputs and targets, then the query's inputs."""
  blocks = [f"{x}{EXEMPLAR_SEPARATOR}{y}" for x, y in exemplars]
  return FEWSHOT_SEPARATOR.join(blocks + [inputs])


def stable_hash(*parts: object) -> int:
  """A 63-bit hash of `parts` that is the same in every process and python version."""
  digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "little") >> 1
