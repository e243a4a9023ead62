"""Writes tests/fixtures/eval_suites: small held-out benchmark files in each release's own
layout, with contents written here (no benchmark text is copied).

  python scripts/make_eval_fixtures.py [OUT]

Layouts: MMLU's CSV release (question, A, B, C, D, answer letter; no header) and flan-2's
mmlu-cot.json (subject -> prompt text); BBH's task JSON ({"examples": [{"input",
"target"}]}) and cot-prompts/*.txt (canary line, dashes, description, Q:/A: blocks);
TyDiQA GoldP's SQuAD JSON (language = prefix of each question id); MGSM's TSVs
(question, answer) and exemplars.py (MGSM_EXEMPLARS: language -> "1".."8" -> {"q", "a"}).
The MGSM exemplars use each language's question word, answer lead and answer phrase.
"""
from __future__ import annotations

import csv
import json
import pathlib
import sys

MGSM = {  # language: (question word, answer lead, answer sentence with {n}), as the release writes them
    "bn": ("প্রশ্ন: ", "ধাপে ধাপে উত্তর: ", "উত্তর হল {n}।"),
    "de": ("Frage: ", "Schritt-für-Schritt-Antwort: ", "Die Antwort lautet {n}."),
    "en": ("Question: ", "Step-by-Step Answer: ", "The answer is {n}."),
    "es": ("Pregunta: ", "Respuesta paso a paso: ", "La respuesta es {n}."),
    "fr": ("Question : ", "Réponse étape par étape : ", "La réponse est {n}."),
    "ja": ("問題：", "ステップごとの答え：", "答えは{n}です。"),
    "ru": ("Задача: ", "Пошаговое решение: ", "Ответ — {n}."),
    "sw": ("Swali: ", "Jibu la Hatua kwa Hatua: ", "Jibu ni {n}."),
    "te": ("ప్రశ్న: ", "దశలవారీగా సమాధానం: ", "సమాధానం {n}."),
    "th": ("โจทย์: ", "คำตอบทีละขั้นตอน: ", "คำตอบคือ {n}"),
    "zh": ("问题：", "逐步解答：", "答案是 {n}。"),
}


def _mmlu(out: pathlib.Path) -> None:
  for split, n in (("dev", 5), ("test", 4)):
    d = out / "mmlu" / "data" / split
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"anatomy_{split}.csv", "w", newline="", encoding="utf-8") as f:
      w = csv.writer(f)
      for i in range(n):
        w.writerow([f"Which structure, numbered {split}-{i}, holds the knee cap in place?",
                    f"tendon {i}", f"ligament {i}", f"cartilage {i}", f"muscle {i}", "ABCD"[(i + 1) % 4]])
  blocks = ["The following are multiple choice questions (with answers) about anatomy."]
  for i, letter in enumerate("BCA"):
    blocks.append(f"Q: Which part, in sample {i}, is named here?\n(A) bone (B) joint (C) nerve (D) vein\n"
                  f"A: Let's think step by step. The sample describes option {letter}. The answer is ({letter}).")
  (out / "mmlu" / "mmlu-cot.json").write_text(json.dumps({"anatomy": "\n\n".join(blocks)}, indent=1),
                                              encoding="utf-8")


BBH_PROMPTS = {
    # Most BBH files break the line after the CoT trigger; some (sports_understanding) do not.
    "date_understanding": ("Work out dates from a short story.", "\n", [
        ("Yesterday was 02/10/2001. What is today?\nOptions:\n(A) 02/11/2001\n(B) 02/09/2001",
         "One day after 02/10/2001 is 02/11/2001.", "(A)"),
        ("Today is 07/01/1999. What was yesterday?\nOptions:\n(A) 07/02/1999\n(B) 06/30/1999",
         "June has 30 days, so the day before is 06/30/1999.", "(B)"),
        ("Tomorrow is 01/01/2010. What is today?\nOptions:\n(A) 12/31/2009\n(B) 01/02/2010",
         "The day before 01/01/2010 is 12/31/2009.", "(A)")]),
    "sports_understanding": ("Say whether a made-up sports sentence is plausible.", " ", [
        ('Is the following sentence plausible? "Ana Lopez scored a hat trick."',
         "Ana Lopez is a footballer here, and hat tricks happen in football.", "yes"),
        ('Is the following sentence plausible? "Ben Carr hit a home run in the penalty box."',
         "A home run is baseball, a penalty box is football.", "no"),
        ('Is the following sentence plausible? "Kim Ode served an ace."',
         "Kim Ode plays tennis, where aces are served.", "yes")]),
}
BBH_EXAMPLES = {
    "date_understanding": [("Today is 03/03/2003. What is tomorrow?\nOptions:\n(A) 03/02/2003\n(B) 03/04/2003", "(B)"),
                           ("Today is 12/31/2000. What is tomorrow?\nOptions:\n(A) 01/01/2001\n(B) 12/30/2000", "(A)")],
    "sports_understanding": [('Is the following sentence plausible? "Lia Moss threw a touchdown pass."', "yes"),
                             ('Is the following sentence plausible? "Tom Reyes dunked in the scrum."', "no")],
}


def _bbh(out: pathlib.Path) -> None:
  (out / "bbh" / "cot-prompts").mkdir(parents=True, exist_ok=True)
  for task, (description, after_trigger, shots) in BBH_PROMPTS.items():
    blocks = [f"Q: {q}\nA: Let's think step by step.{after_trigger}{r} So the answer is {a}." for q, r, a in shots]
    text = ("FIXTURE DATA WRITTEN FOR FLAN_JAX TESTS\n-----\n" + description + "\n\n" + "\n\n".join(blocks))
    (out / "bbh" / "cot-prompts" / f"{task}.txt").write_text(text, encoding="utf-8")
    examples = [{"input": q, "target": t} for q, t in BBH_EXAMPLES[task]]
    (out / "bbh" / f"{task}.json").write_text(json.dumps({"canary": "fixture", "examples": examples}, indent=1),
                                            encoding="utf-8")


def _squad(path: pathlib.Path, rows) -> None:
  paragraphs = [{"context": c, "qas": [{"id": f"{lang}-{i:04d}", "question": q,
                                        "answers": [{"text": a, "answer_start": c.find(a)} for a in answers]}]}
                for i, (lang, c, q, answers) in enumerate(rows)]
  path.write_text(json.dumps({"version": "TyDiQA-GoldP-1.1-fixture", "data": [{"title": "fixture",
                                                                            "paragraphs": paragraphs}]},
                             ensure_ascii=False, indent=1), encoding="utf-8")


def _tydiqa(out: pathlib.Path) -> None:
  d = out / "tydiqa"
  d.mkdir(parents=True, exist_ok=True)
  _squad(d / "tydiqa-goldp-v1.1-train.json", [
      ("english", "The river Orbe flows north.", "Which way does the Orbe flow?", ["north"]),
      ("finnish", "Kallavesi on järvi Kuopion vieressä.", "Missä Kallavesi on?", ["Kuopion vieressä"])])
  _squad(d / "tydiqa-goldp-v1.1-dev.json", [
      ("finnish", "Tammela on kylä Hämeessä.", "Missä Tammela on?", ["Hämeessä", "Hämeessä."]),
      ("finnish", "Oulujoki laskee mereen Oulussa.", "Mihin Oulujoki laskee?", ["mereen"]),
      ("english", "The bridge was built in 1901.", "When was the bridge built?", ["1901"])])


def _mgsm(out: pathlib.Path) -> None:
  d = out / "mgsm"
  d.mkdir(parents=True, exist_ok=True)
  exemplars = {}
  for lang, (q_word, lead, sentence) in MGSM.items():
    shots = {}
    for i in range(1, 9):
      a, b = i + 2, 2 * i
      shots[str(i)] = {"q": f"{q_word}[{lang} {i}] {a} + {b} = ?",
                       "a": f"{lead}{a} + {b} = {a + b}. {sentence.format(n=a + b)}"}
    exemplars[lang] = shots
    rows = [f"[{lang} test] 4 + 5 = ?\t9", f"[{lang} test] 10 - 3 = ?\t7"]
    (d / f"mgsm_{lang}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
  body = json.dumps(exemplars, ensure_ascii=False, indent=4)
  (d / "exemplars.py").write_text('"""MGSM exemplars in the release\'s layout (fixture written for flan_jax tests)."""\n\n'
                                  "EXEMPLAR_NUMBER_ANSWERS = [5, 8, 11, 14, 17, 20, 23, 26]\n\n"
                                  f"MGSM_EXEMPLARS = {body}\n", encoding="utf-8")


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  out = pathlib.Path(argv[0] if argv else pathlib.Path(__file__).resolve().parents[1] / "tests/fixtures/eval_suites")
  for write in (_mmlu, _bbh, _tydiqa, _mgsm):
    write(out)
  print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
