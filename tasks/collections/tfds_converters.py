"""TFDS features -> the canonical fields of each Muffin task's template family.

`flan-jax data prepare muffin` runs these over each prepared TFDS dataset and writes
`<data_dir>/muffin/<task>/{train,validation}.jsonl`. A converter takes one example (python
values, bytes decoded) and the class names of its ClassLabel features, and returns the
family's fields (see `families.FIELDS`) or None to drop the example (e.g. SNLI's
unlabelled pairs). Labels become answer words ("yes" / "no" / "it is not possible to
tell" for inference), and the answer options go in "options".

`VALIDATION_SPLIT` names the split used as validation where it is not "validation";
a dataset without one holds out every 10th train example.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable

Names = dict[str, list[str]]
Converter = Callable[[dict, Names], "dict | None"]

_YES, _NO, _MAYBE = "yes", "no", "it is not possible to tell"
_NLI_WORDS = {"entailment": _YES, "e": _YES, "neutral": _MAYBE, "n": _MAYBE,
              "contradiction": _NO, "c": _NO, "not_entailment": _NO, "equivalent": _YES,
              "not_equivalent": _NO, "duplicate": _YES, "not_duplicate": _NO,
              "paraphrase": _YES, "different_meaning": _NO, "True": _YES, "False": _NO}
_SENTIMENT = {"neg": "negative", "pos": "positive", "1": "negative", "2": "positive",
              "negative": "negative", "positive": "positive"}
_TREC = {"DESC": "description", "ENTY": "entity", "ABBR": "abbreviation", "HUM": "human",
         "NUM": "numeric value", "LOC": "location"}
_LANG = {"en": "English", "fr": "French", "de": "German", "cs": "Czech", "fi": "Finnish",
         "ro": "Romanian", "ru": "Russian", "tr": "Turkish", "es": "Spanish"}


def _nli(premise: str, hypothesis: str, label: str = "label"):
  def convert(ex, names):
    if ex[label] < 0:
      return None
    words = list(dict.fromkeys(_NLI_WORDS[n] for n in names[label]))
    return {"premise": ex[premise], "hypothesis": ex[hypothesis],
            "answer": _NLI_WORDS[names[label][ex[label]]], "options": words}
  return convert


def _classify(text: Callable[[dict], str], label: str = "label", words: dict | None = None):
  def convert(ex, names):
    if ex[label] < 0:
      return None
    options = [(words or {}).get(n, n) for n in names[label]]
    return {"text": text(ex), "answer": options[ex[label]], "options": options}
  return convert


def _summarize(text: str, summary: str):
  return lambda ex, names: {"text": ex[text], "answer": ex[summary]}


def _translate(source: str, target: str):
  return lambda ex, names: {"text": ex[source], "source_lang": _LANG[source],
                            "target_lang": _LANG[target], "answer": ex[target]}


def _choice(question: str, options: list[str], answer: int) -> dict:
  return {"question": question, "answer": options[answer], "options": options}


def _arc(ex, names):
  labels, texts = ex["choices"]["label"], ex["choices"]["text"]
  index = ex["answerKey"]  # a ClassLabel over A-E; some questions label choices 1-4
  key = names["answerKey"][index] if isinstance(index, int) else index
  if key in labels:
    index = labels.index(key)
  if not isinstance(index, int) or not 0 <= index < len(texts):
    return None
  return _choice(ex["question"], texts, index)


def _openbookqa(ex, names):
  q = ex["question"]
  options = [q[f"choice_{c}"] for c in "ABCD"]
  return _choice(q["stem"], options, ex["answerKey"])


def _copa(ex, names):
  connective = "What was the cause?" if ex["question"] == "cause" else "What happened as a result?"
  return _choice(f"{ex['premise']} {connective}", [ex["choice1"], ex["choice2"]], ex["label"])


def _squad(ex, names):
  answers = ex["answers"]["text"]
  if not answers:
    return {"context": ex["context"], "question": ex["question"], "answer": "unanswerable"}
  return {"context": ex["context"], "question": ex["question"], "answer": answers[0]}


def _wsc(ex, names):
  return _choice(f"{ex['text']}\nIn the passage above, does \"{ex['span2_text']}\" refer to "
                 f"\"{ex['span1_text']}\"?", [_NO, _YES], ex["label"])


def _lambada(ex, names):
  words = ex["passage"].split()
  return {"text": " ".join(words[:-1]), "answer": words[-1]} if len(words) > 1 else None


def _numbered(items, limit: int | None = None) -> str:
  return "\n".join(f"{i}. {item}" for i, item in enumerate(list(items)[:limit], 1))


def _coqa(ex, names):
  """A CoQA story with its whole question sequence; the answers come back numbered."""
  questions, answers = list(ex["questions"]), list(ex["answers"]["input_text"])
  if not questions or len(questions) != len(answers):
    return None
  return {"context": ex["story"], "question": _numbered(questions),
          "answer": _numbered(answers)}


_UQA_OPTION = re.compile(r"\(([A-H])\)\s*")
_UQA_BREAK = re.compile(r"\\n|\n")  # UnifiedQA's files write the break as a literal "\n"


def _unified_qa_science(ex, names):
  """UnifiedQA's multiple-choice rows (question, a break, "(A) x (B) y ..."): question and
  options; rows whose answer is not one of the options are dropped."""
  question, *rest = _UQA_BREAK.split(ex["input"], maxsplit=1)
  parts = _UQA_OPTION.split(rest[0] if rest else "")[1:]  # [letter, text, letter, text, ...]
  options = [text.strip() for text in parts[1::2]]
  answer = ex["output"].strip()
  if len(options) < 2 or answer not in options:
    return None
  return {"question": question.strip(), "answer": answer, "options": options}


def _rotten_tomatoes(ex, names):
  reviews = list(ex["_critics"]["value"])
  if not reviews or not ex["_critic_consensus"].strip():
    return None
  movie = ex["_movie_name"].replace("_", " ")
  return {"text": f"Reviews of {movie}:\n{_numbered(reviews, 10)}",
          "answer": ex["_critic_consensus"]}


def _idebate(ex, names):
  arguments = list(ex["_argument_sentences"]["value"])
  if not arguments or not ex["_claim"].strip():
    return None
  return {"text": f"Debate: {ex['_debate_name']}\nArguments:\n{_numbered(arguments, 10)}",
          "answer": ex["_claim"]}


def _trivia_qa_without_wikipedia(ex, names):
  """TriviaQA questions for which no Wikipedia page was found (the unfiltered set)."""
  pages = ex.get("entity_pages") or {}
  if list(pages.get("title", ())) or not ex["answer"]["value"]:
    return None
  return {"question": ex["question"], "answer": ex["answer"]["value"]}


# WikiDialog's target: an odd turn (the answering speaker's) among the first 20, drawn per
# dialog, as FLAN's WikiDialog task does; the passage is not shown.
DIALOG_TURNS = 20


def _wiki_dialog(ex, names):
  """WikiDialog: the turns before a drawn odd turn, and that turn as the target."""
  utterances = [str(u) for u in ex["utterances"]]
  odd = list(range(1, min(len(utterances), DIALOG_TURNS), 2))
  if not odd:
    return None
  t = odd[zlib.crc32("\x1f".join(utterances[:2]).encode("utf-8")) % len(odd)]
  return {"turns": utterances[:t], "answer": utterances[t]}


def _qrecc(ex, names):
  """QReCC: the conversation so far plus the new question; the answer is the next turn."""
  if not ex["answer"].strip() or not ex["question"].strip():
    return None
  return {"turns": list(ex["context"]) + [ex["question"]], "answer": ex["answer"]}


def _sentence_edit(slot: int, corrupt: Callable[[str], str]):
  """Flan 2021's three edit tasks over the English side of ParaCrawl en-da: the input is
  the sentence damaged by `corrupt`, the target the sentence (the task's templates say
  what to repair: muffin_templates_text.py). The three tasks take disjoint thirds of the
  sentences (by a hash of the text), as FLAN used disjoint slices."""
  def convert(ex, names):
    text = " ".join(ex["en"].split())
    if zlib.crc32(text.encode("utf-8")) % 3 != slot:
      return None
    damaged = corrupt(text)
    return None if damaged == text else {"text": damaged, "answer": text}
  return convert


CONVERTERS: dict[str, Converter] = {
    "aeslc": _summarize("email_body", "subject_line"),
    "coqa": _coqa,
    "opinion_abstracts/idebate": _idebate,
    "opinion_abstracts/rotten_tomatoes": _rotten_tomatoes,
    "q_re_cc": _qrecc,
    "trivia_qa/unfiltered.nocontext": _trivia_qa_without_wikipedia,
    "unified_qa/ai2_science_middle": _unified_qa_science,
    "wiki_dialog": _wiki_dialog,
    "ag_news_subset": _classify(lambda ex: f"{ex['title']}\n\n{ex['description']}"),
    "anli/r1": _nli("context", "hypothesis"),
    "anli/r2": _nli("context", "hypothesis"),
    "anli/r3": _nli("context", "hypothesis"),
    "ai2_arc/ARC-Challenge": _arc,
    "ai2_arc/ARC-Easy": _arc,
    "bool_q": lambda ex, names: {"context": ex["passage"], "question": ex["question"] + "?",
                                 "answer": _YES if ex["answer"] else _NO,
                                 "options": [_NO, _YES]},
    "super_glue/cb": _nli("premise", "hypothesis"),
    "cnn_dailymail": _summarize("article", "highlights"),
    "glue/cola": _classify(lambda ex: ex["sentence"]),
    "super_glue/copa": _copa,
    "cosmos_qa": lambda ex, names: _choice(f"{ex['context']}\n{ex['question']}",
                                           [ex[f"answer{i}"] for i in range(4)], ex["label"]),
    "definite_pronoun_resolution": lambda ex, names: _choice(
        f"{ex['sentence']}\nWho is \"{ex['pronoun']}\"?", list(ex["candidates"]), ex["label"]),
    "drop": lambda ex, names: {"context": ex["passage"], "question": ex["question"],
                               "answer": ex["answer"]},
    "gigaword": _summarize("document", "summary"),
    "gem/common_gen": lambda ex, names: {"text": ", ".join(ex["concepts"]),
                                         "answer": ex["target"]},
    "gem/dart": lambda ex, names: {"text": "; ".join(" | ".join(t) for t in ex["tripleset"]),
                                   "answer": ex["target"]},
    "gem/e2e_nlg": lambda ex, names: {"text": ex["meaning_representation"],
                                      "answer": ex["target"]},
    "gem/web_nlg_en": lambda ex, names: {"text": "; ".join(ex["input"]), "answer": ex["target"]},
    "gem/wiki_lingua_english_en": _summarize("source", "target"),
    "math_dataset/algebra__linear_1d": lambda ex, names: {"question": ex["question"],
                                                          "answer": ex["answer"]},
    "newsroom": _summarize("text", "summary"),
    "story_cloze/2016": lambda ex, names: None if not 0 <= ex["label"] < len(ex["endings"]) else (
        _choice(ex["context"], list(ex["endings"]), ex["label"])),
    "glue/mrpc": _nli("sentence1", "sentence2"),
    "glue/qqp": _nli("question1", "question2"),
    "hellaswag": lambda ex, names: None if not 0 <= ex["label"] < len(ex["endings"]) else _choice(
        ex["context"], list(ex["endings"]), ex["label"]),
    "imdb_reviews": _classify(lambda ex: ex["text"], words=_SENTIMENT),
    "lambada": _lambada,
    "glue/mnli": _nli("premise", "hypothesis"),
    "multi_news": _summarize("document", "summary"),
    "super_glue/multirc": lambda ex, names: {
        "context": ex["paragraph"],
        "question": f"{ex['question']}\nIs \"{ex['answer']}\" a correct answer?",
        "answer": _YES if ex["label"] == 1 else _NO, "options": [_NO, _YES]},
    "natural_questions_open": lambda ex, names: (
        {"question": ex["question"] + "?", "answer": ex["answer"][0]} if ex["answer"] else None),
    "openbookqa": _openbookqa,
    "para_crawl/enes": _translate("en", "es"),
    "paws_wiki": _nli("sentence1", "sentence2"),
    "piqa": lambda ex, names: _choice(ex["goal"], [ex["sol1"], ex["sol2"]], ex["label"]),
    "glue/qnli": _nli("question", "sentence"),
    "quac": lambda ex, names: {"context": ex["context"], "question": ex["question"],
                               "answer": (ex["answers"]["text"] or ["CANNOTANSWER"])[0]},
    "super_glue/record": lambda ex, names: (
        {"context": ex["passage"], "question": ex["query"], "answer": ex["answers"][0]}
        if ex["answers"] else None),
    "super_glue/rte": _nli("premise", "hypothesis"),
    "samsum": _summarize("dialogue", "summary"),
    "sentiment140": lambda ex, names: None if ex["polarity"] not in (0, 4) else {
        "text": ex["text"], "answer": "negative" if ex["polarity"] == 0 else "positive",
        "options": ["negative", "positive"]},
    "snli": _nli("premise", "hypothesis"),
    "squad/v1.1": _squad,
    "squad/v2.0": _squad,
    "glue/sst2": _classify(lambda ex: ex["sentence"], words=_SENTIMENT),
    "glue/stsb": lambda ex, names: {"premise": ex["sentence1"], "hypothesis": ex["sentence2"],
                                    "answer": str(round(float(ex["label"])))},
    "trec": _classify(lambda ex: ex["text"], label="label-coarse", words=_TREC),
    "trivia_qa/rc": lambda ex, names: {"question": ex["question"],
                                       "answer": ex["answer"]["value"]},
    "super_glue/wic": lambda ex, names: {
        "premise": ex["sentence1"],
        "hypothesis": f"{ex['sentence2']}\n(Is \"{ex['word']}\" used in the same sense?)",
        "answer": _YES if ex["label"] == 1 else _NO, "options": [_NO, _YES]},
    "winogrande": lambda ex, names: None if ex["label"] < 1 else _choice(
        ex["sentence"], [ex["option1"], ex["option2"]], ex["label"] - 1),
    "wmt14_translate/fr-en": _translate("fr", "en"),
    "wmt16_translate/cs-en": _translate("cs", "en"),
    "wmt16_translate/de-en": _translate("de", "en"),
    "wmt16_translate/fi-en": _translate("fi", "en"),
    "wmt16_translate/ro-en": _translate("ro", "en"),
    "wmt16_translate/ru-en": _translate("ru", "en"),
    "wmt16_translate/tr-en": _translate("tr", "en"),
    "glue/wnli": _nli("sentence1", "sentence2"),
    "super_glue/wsc.fixed": _wsc,
    "xsum": _summarize("document", "summary"),
    "yelp_polarity_reviews": _classify(lambda ex: ex["text"], words=_SENTIMENT),
}

# Catalogue datasets that share a TFDS dataset with others but convert it differently.
TASK_CONVERTERS: dict[str, Converter] = {
    "true_case": _sentence_edit(0, str.lower),
    "fix_punct": _sentence_edit(1, lambda t: " ".join(re.sub(r"[^\w\s]", "", t).split())),
    "word_segment": _sentence_edit(2, lambda t: t.replace(" ", "")),
}


def converter_for(entry) -> Converter | None:
  """The converter for a catalogue entry: its own, else its TFDS dataset's, else None."""
  return TASK_CONVERTERS.get(entry.dataset) or CONVERTERS.get(entry.tfds_name)


# Dataset -> the TFDS split used as its train split, where not "train" (Story Cloze
# publishes no train split; FLAN trained on its validation split).
TRAIN_SPLIT = {"story_cloze": "validation"}
# Dataset -> the TFDS split used as its validation split, where not "validation".
VALIDATION_SPLIT = {
    "mnli_matched": "validation_matched", "mnli_mismatched": "validation_mismatched",
    "ag_news_subset": "test", "imdb_reviews": "test", "yelp_polarity_reviews": "test",
    "sentiment140": "test", "trec": "test", "drop": "dev", "lambada": "dev",
    "story_cloze": "test",
}
