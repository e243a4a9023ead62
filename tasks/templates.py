"""Prompt templates and the FLAN formats (zero-/few-shot x options/no options, chain of thought).

A `Template` is a pair of patterns with `{field}` placeholders filled from one example
(a dict of strings). The FLAN formats are derived from it, never written per task:

  zsnoopt  "{inputs}"                                        -> "{targets}"
  zsopt    "{inputs}\n\nOPTIONS:\n- a\n- b"                  -> "{targets}"
  fs*      "{ex1 inputs}\n{ex1 targets}\n\n...\n\n{inputs}"  -> "{targets}"
  zscot    "{inputs}\nLet's think step by step."             -> "{rationale} So the answer is {targets}."
  fscot    CoT exemplars joined the same way as fs*.
The CoT formats show the options block too when the task has options. The CoT trigger
follows a prompt ending in ":" (e.g. "A:") after a space, else on a new line
(`add_cot_trigger`, shared with the evaluation suites so train and eval prompts agree).

FLAN's surface variety (flan/v2 of google-research/FLAN; the kinds and rules carry over,
the strings here are ours):
  * `OptionStyle`: the options block drawn per example from `OPTION_HEADERS` (one is no
    header) x `OPTION_ITEMS` (bullets, letters, numerals, roman numerals, parenthesised)
    x item endings; with a label style the target becomes the label ("(B)"), as FLAN's
    `format_options_non_deterministic` does. `FIXED_OPTIONS` is the plain block above.
  * `FewShotPattern`: input/answer prefixes and separators of a few-shot prompt; the
    query ends with the answer prefix.
  * Inverted templates (`Template(..., inverted=True)`) never show options: their target
    is not one of them.

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
  inverted: an input inversion (the target is an input field, not the answer): rendered
    without the options block in every format.
  """
  inputs: str
  targets: str
  cot_trigger: str = COT_TRIGGER
  cot_targets: str = COT_TARGETS
  inverted: bool = False   # an input inversion: given the answer, write the input

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


@dataclasses.dataclass(frozen=True)
class OptionStyle:
  """How an options block looks: a header (may be empty), an item marker per position
  (`{}` takes the label; bullets have none), a string after each item, and whether items
  go one per line or on one line."""
  name: str
  header: str
  item: str                 # e.g. "({})" with labels, "-" for a bullet
  labels: tuple[str, ...]   # per position; () for bullets
  end: str = ""
  newline: bool = True

  @property
  def labelled(self) -> bool:
    return bool(self.labels)

  def label(self, i: int) -> str:
    return self.item.format(self.labels[i]) if self.labels else self.item

  def block(self, options: Sequence[str]) -> str:
    if self.labels and len(options) > len(self.labels):
      raise TemplateError(f"option style {self.name!r} labels at most {len(self.labels)} "
                          f"options, got {len(options)}")
    sep = "\n" if self.newline else " "
    items = [f"{self.label(i)} {o}{self.end}" for i, o in enumerate(options)]
    body = sep.join(items)
    if self.header:
      return f"\n\n{self.header}{sep}{body}"
    return "\n\n" + body


_LETTERS = tuple(string.ascii_uppercase)
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
          "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII", "XXIII", "XXIV",
          "XXV", "XXVI")
_NUMERALS = tuple(str(i) for i in range(1, 27))
# Item markers: (style name, marker, labels). Bullets carry no label; the others do, and a
# labelled style makes the target the label.
OPTION_ITEMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("dash", "-", ()), ("star", "*", ()), ("plus", "+", ()), ("double-dash", "--", ()),
    ("bracket-dash", "[-]", ()),
    ("A.", "{}.", _LETTERS), ("(A)", "({})", _LETTERS), ("A)", "{})", _LETTERS),
    ("[A]", "[{}]", _LETTERS), ("a.", "{}.", tuple(c.lower() for c in _LETTERS)),
    ("(a)", "({})", tuple(c.lower() for c in _LETTERS)),
    ("1.", "{}.", _NUMERALS), ("(1)", "({})", _NUMERALS), ("1)", "{})", _NUMERALS),
    ("[1]", "[{}]", _NUMERALS),
    ("I.", "{}.", _ROMAN), ("(i)", "({})", tuple(r.lower() for r in _ROMAN)),
    ("i.", "{}.", tuple(r.lower() for r in _ROMAN)),
)
# Headers of the options block, ours; "" shows the items with no header.
OPTION_HEADERS = (
    "", "OPTIONS:", "Options:", "Choices:", "Possible answers:", "Pick one:",
    "Select one:", "Answer choices:", "Choose one of the following:", "Candidates:",
    "Your options are:", "Available answers:", "Possible choices:", "Select the answer:",
    "Pick the right one:", "The choices:",
)
OPTION_ITEM_ENDS = ("", ";", ".")

FIXED_OPTIONS = OptionStyle("fixed", OPTIONS_HEADER, "-", ())


def option_style(*key: object) -> OptionStyle:
  """The options style of one example (or one few-shot prompt), drawn from `key`:
  header, item marker, item ending and layout, each by its own hash."""
  name, item, labels = OPTION_ITEMS[stable_hash(*key, "item") % len(OPTION_ITEMS)]
  header = OPTION_HEADERS[stable_hash(*key, "header") % len(OPTION_HEADERS)]
  end = OPTION_ITEM_ENDS[stable_hash(*key, "end") % len(OPTION_ITEM_ENDS)]
  newline = stable_hash(*key, "layout") % 4 != 0   # one in four on a single line
  return OptionStyle(name, header, item, labels, end, newline)


def render_options(options: Sequence[str], style: OptionStyle = FIXED_OPTIONS) -> str:
  """The options block of the "opt" formats, with its leading blank line."""
  return style.block(options)


def _as_label(style: OptionStyle, options: Sequence[str], targets: str) -> str:
  """The label of the option that `targets` is, when `style` labels its items and the
  target is exactly one option; else `targets` unchanged."""
  if not style.labelled:
    return targets
  hits = [i for i, o in enumerate(options) if o.strip() == targets.strip()]
  return style.label(hits[0]) if len(hits) == 1 else targets


# Dialogs (`turns`: a list of utterances, speakers alternating) are written into the `text`
# field of the dialog templates. Zero-shot prompts draw the layout per example from
# `DIALOG_STARTS` x `DIALOG_SPEAKERS`, as FLAN's `format_dialog_non_deterministic` does; few-shot
# prompts use the fixed "DIALOG:" list.
DIALOG_FIELD = "turns"
DIALOG_STARTS = (
    "", "DIALOG:", "Dialog:", "Conversation:", "Chat log:", "Transcript:", "Here is a dialog:",
    "A conversation between two people:", "Two people talk:", "Read the dialog:",
    "The exchange so far:", "Messages:", "Chat:", "Conversation history:",
)
DIALOG_SPEAKERS = (
    ("- ", "- "), ("A: ", "B: "), ("Person A: ", "Person B: "), ("Speaker 1: ", "Speaker 2: "),
    ("[1] ", "[2] "), ("(1) ", "(2) "), ("User: ", "Agent: "), ("Q: ", "A: "), ("X: ", "Y: "),
    ("Alice: ", "Bob: "), ("1) ", "2) "), ("> ", ">> "), ("Customer: ", "Assistant: "),
    ("P1: ", "P2: "), ("* ", "* "), ("Human: ", "Bot: "),
)
FIXED_DIALOG = ("DIALOG:", ("- ", "- "))


def dialog_style(*key: object) -> tuple[str, tuple[str, str]]:
  """(start string, speaker prefixes) of one zero-shot dialog, drawn from `key`."""
  return (DIALOG_STARTS[stable_hash(*key, "dialog-start") % len(DIALOG_STARTS)],
          DIALOG_SPEAKERS[stable_hash(*key, "dialog-speakers") % len(DIALOG_SPEAKERS)])


def dialog_text(turns: Sequence[str], style: tuple[str, tuple[str, str]] = FIXED_DIALOG) -> str:
  """A dialog as one text block: the start string, then one turn per line with its
  speaker's prefix."""
  start, speakers = style
  lines = [f"{speakers[i % 2]}{t}" for i, t in enumerate(turns)]
  return "\n".join(([start] if start else []) + lines)


def add_cot_trigger(inputs: str, trigger: str = COT_TRIGGER) -> str:
  """The prompt followed by the CoT trigger: after a space when the prompt ends with an
  answer prefix such as "A:", else on its own line. Train and eval prompts use this."""
  inputs = inputs.rstrip()
  return f"{inputs} {trigger}" if inputs.endswith(":") else f"{inputs}{COT_SEPARATOR}{trigger}"


PRERENDERED = Template("{inputs}", "{targets}")


def is_prerendered(example: Mapping[str, object]) -> bool:
  """Rows that are already prompts (`inputs`/`targets` strings: P3 prompt-tasks, the
  published Flan exports) are passed through as they are, in place of a template."""
  return isinstance(example.get("inputs"), str) and isinstance(example.get("targets"), str)


def render(template: Template, example: Mapping[str, object], fmt: Format, *,
           options: Sequence[str] | None = None, rationale: str | None = None,
           style: OptionStyle = FIXED_OPTIONS) -> tuple[str, str]:
  """(inputs, targets) of one example in one format, without few-shot exemplars.

  Options are shown in the "opt" and CoT formats (never by an inverted template), in
  `style`; a labelled style turns a target equal to one option into that option's label.
  """
  if is_prerendered(example):
    template = PRERENDERED
  show = fmt.options and bool(options) and not template.inverted
  if show and style.labels and len(options) > len(style.labels):
    style = dataclasses.replace(style, name="dash", item="-", labels=())  # too many to label
  options_text = render_options(options, style) if show else ""
  fields = {**example, OPTIONS_FIELD: options_text}
  inputs = _fill(template.inputs, fields).lstrip("\n")  # a template may open with the options
  if options_text and OPTIONS_FIELD not in _placeholders(template.inputs):
    inputs += options_text
  targets = _fill(template.targets, fields)
  if show:
    targets = _as_label(style, options, targets)
  if fmt.cot:
    if not rationale:
      raise TemplateError(f"format {fmt.name!r} needs a rationale, but the example has none")
    inputs = add_cot_trigger(inputs, template.cot_trigger)
    targets = _fill(template.cot_targets, {RATIONALE_FIELD: rationale, TARGET_FIELD: targets})
  return inputs, targets


@dataclasses.dataclass(frozen=True)
class FewShotPattern:
  """The surface of a few-shot prompt: each exemplar is
  `inputs_prefix + inputs + x_y + targets_prefix + targets`, exemplars and the query are
  joined by `separator`, and the query ends with `inputs_prefix + inputs + x_y +
  targets_prefix` (trailing spaces stripped), so the prompt ends with the answer prefix."""
  inputs_prefix: str = ""
  targets_prefix: str = ""
  x_y: str = EXEMPLAR_SEPARATOR
  separator: str = FEWSHOT_SEPARATOR

  def exemplar(self, x: str, y: str) -> str:
    return f"{self.inputs_prefix}{x}{self.x_y}{self.targets_prefix}{y}"

  def query(self, x: str) -> str:
    if not (self.inputs_prefix or self.targets_prefix):
      return x
    return f"{self.inputs_prefix}{x}{self.x_y}{self.targets_prefix}".rstrip()


PLAIN = FewShotPattern()


def fewshot_prompt(exemplars: Sequence[tuple[str, str]], inputs: str,
                   pattern: FewShotPattern = PLAIN) -> str:
  """The few-shot prompt: each exemplar's inputs and targets, then the query's inputs."""
  blocks = [pattern.exemplar(x, y) for x, y in exemplars]
  return pattern.separator.join(blocks + [pattern.query(inputs)])


def stable_hash(*parts: object) -> int:
  """A 63-bit hash of `parts` that is the same in every process and python version."""
  digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "little") >> 1


# The few-shot budget: FLAN prunes few-shot prompts to 1,920 tokens of its 2,048 input length
# (flan/v2/constants.py: FEW_SHOT_MAX_LEN, SEQUENCE_LEN); the same margin here.
FEWSHOT_MARGIN = 1920 / 2048
DEFAULT_INPUTS_LENGTH = 2048


def fewshot_budget(inputs_length: int = DEFAULT_INPUTS_LENGTH,
                   max_input_tokens: int | None = None) -> int:
  """Tokens (with EOS) a few-shot prompt may take for an `inputs_length`-token input:
  FLAN's margin, 1,920 of 2,048; `max_input_tokens` overrides it."""
  if max_input_tokens is not None:
    return int(max_input_tokens)
  return int(int(inputs_length) * FEWSHOT_MARGIN)
