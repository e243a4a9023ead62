"""Each benchmark's answer rule (flan_jax/tasks/scoring.py) on a table of outputs, with the
verdict the reference's rule gives: BBH and MMLU CoT as lm-eval 0.4.13's task files read
them, TyDiQA as SQuAD's exact match on the first line, MGSM by the language's own phrase
(url-nlp/mgsm's exemplars, lm-eval's mgsm_native_cot)."""
import pytest

from flan_jax.tasks import eval_suites as es
from flan_jax.tasks import scoring

DE = dict(phrases=es.MGSM_ANSWER_PHRASES["de"], stops=(es.MGSM_QUESTION_WORDS["de"],))
JA = dict(phrases=es.MGSM_ANSWER_PHRASES["ja"], stops=(es.MGSM_QUESTION_WORDS["ja"],))
ZH = dict(phrases=es.MGSM_ANSWER_PHRASES["zh"], stops=(es.MGSM_QUESTION_WORDS["zh"],))
EN = dict(phrases=es.MGSM_ANSWER_PHRASES["en"], stops=(es.MGSM_QUESTION_WORDS["en"],))

CASES = [
    # BBH direct: read up to the first "\n\n" or "Q:", exact match, case-sensitive.
    ("bbh", "(B)\n\nQ: What next?\nA: (A)", "(B)", dict(cot=False), True),      # runs on into a new question
    ("bbh", "(A)\n\nQ: What next?\nA: (B)", "(B)", dict(cot=False), False),
    ("bbh", " (C) ", "(C)", dict(cot=False), True),
    ("bbh", "(C) 12/14/1937", "(C)", dict(cot=False), False),                    # option text is not the gold
    ("bbh", "yes", "yes", dict(cot=False), True),
    ("bbh", "Yes", "yes", dict(cot=False), False),                               # BBH's case counts
    ("bbh", "6 Q: count again", "6", dict(cot=False), True),
    ("bbh", "six", "6", dict(cot=False), False),
    # BBH CoT: the first "the answer is", to the end of its line, less a final full stop.
    ("bbh", "So the answer is 12/25/1937", "(B)", dict(cot=True), False),       # no mapping of text to letters
    ("bbh", "Tomorrow is 01/03. So the answer is (A).", "(A)", dict(cot=True), True),
    ("bbh", "So the answer is (A). Then the answer is (B).", "(B)", dict(cot=True), False),  # the first counts
    ("bbh", "So the answer is (A)", "(A)", dict(cot=True), True),                # EOS without a full stop
    ("bbh", "So the answer is (B).\n\nQ: new one\nA: So the answer is (A).", "(B)", dict(cot=True), True),
    ("bbh", "Let's see.\nSo the answer is valid.", "valid", dict(cot=True), True),
    ("bbh", "So the answer is Valid.", "valid", dict(cot=True), False),
    ("bbh", "The answer is (A).", "(A)", dict(cot=True), False),                 # capital "The": not BBH's phrase
    ("bbh", "I think it is (A).", "(A)", dict(cot=True), False),                 # no phrase, no answer
    ("bbh", "5 + 3 = 8. So the answer is 8.", "8", dict(cot=True), True),
    # MMLU CoT: the first "answer is", ignoring case and punctuation against "(B)".
    ("mmlu_cot", "The answer is (B).", "(B)", {}, True),
    ("mmlu_cot", "The answer is B.", "(B)", {}, True),
    ("mmlu_cot", "the answer is b", "(B)", {}, True),
    ("mmlu_cot", "The answer is A lesion of the nerve.", "(A)", {}, False),     # text is not a letter
    ("mmlu_cot", "A lesion of the nerve", "(A)", {}, False),
    ("mmlu_cot", "The answer is (B) cranial.", "(B)", {}, False),
    ("mmlu_cot", "The answer is (C). Next question. The answer is (B).", "(B)", {}, False),
    # MGSM: the number after the language's phrase, first line (or next question word) only.
    ("mgsm", "5 + 6 = 11. Die Antwort lautet 11.", "11", DE, True),
    ("mgsm", "5 + 6 = 11. Die Antwort ist 11.", "11", DE, True),
    ("mgsm", "5 + 6 = 11. The answer is 11.", "11", DE, False),                  # another language's phrase
    ("mgsm", "Die Antwort lautet 1,000.", "1000", DE, True),
    ("mgsm", "Die Antwort lautet 18.0", "18", DE, True),
    ("mgsm", "Rechnen.\nDie Antwort lautet 11.", "11", DE, False),               # read up to the first newline
    ("mgsm", "Die Antwort lautet 7. Frage: Die Antwort lautet 9.", "7", DE, True),
    ("mgsm", "3+2=5。答えは5です。", "5", JA, True),
    ("mgsm", "3 + 2 = 5 辆车。答案是 5。", "5", ZH, True),
    ("mgsm", "There are 12. The answer is -3.", "-3", EN, True),
    ("mgsm", "It is 12.", "12", EN, False),                                      # no phrase
]


@pytest.mark.parametrize("scorer, output, gold, how, verdict", CASES)
def test_reference_verdicts(scorer, output, gold, how, verdict):
  assert scoring.correct(scorer, output, gold, **how) is verdict


def test_the_table_covers_every_generating_scorer():
  assert len(CASES) >= 30 and {c[0] for c in CASES} == {"bbh", "mmlu_cot", "mgsm"}


@pytest.mark.parametrize("output, golds, em, f1", [
    ("Rome\n\nQ: Where is Spain?\n\nA: Madrid", ["Rome"], 100.0, 100.0),        # first line only
    ("the Rome.", ["Rome"], 100.0, 100.0),                                       # SQuAD normalisation
    ("in Rome city", ["Rome", "in Rome"], 0.0, 80.0),                            # best gold for F1
    ("Madrid", ["Rome"], 0.0, 0.0),
    ("\nRome", ["Rome"], 100.0, 100.0),                                          # leading whitespace is stripped
])
def test_tydiqa_exact_match_and_f1_on_the_first_line(output, golds, em, f1):
  assert scoring.tydiqa_scores([output], [golds]) == pytest.approx({"em": em, "f1": f1})


def test_lenient_is_a_named_option_that_differs_where_the_references_do():
  # flan_jax's lenient reading maps text onto options and takes the last answer phrase.
  assert scoring.correct("lenient", "the answer is B", "(B)", options=["x", "y"])
  assert scoring.correct("lenient", "(B)\n\nQ: next\nA: (A)", "(B)", options=["x", "y"]) is False
  with pytest.raises(ValueError, match="does not judge one output"):
    scoring.correct("unknown", "x", "y")


def test_self_consistency_votes_on_the_scorers_reading():
  samples = ["So the answer is (A).", "so (B)", "Thus. So the answer is (B).", "So the answer is (B).\n\nQ: x"]
  assert scoring.self_consistency("bbh", samples, "(B)", cot=True)        # (B) 3 votes, the unread one abstains
  assert not scoring.self_consistency("bbh", samples[:1] + samples[1:2], "(B)", cot=True)
  assert scoring.self_consistency("mgsm", ["Die Antwort lautet 4.", "Die Antwort ist 5.", "Die Antwort lautet 5."],
                                  "5", **DE)
