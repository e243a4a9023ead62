"""The Flan 2022 task catalogue, offline: which tasks exist and what they are.

Counts in the Flan Collection paper (Longpre et al., 2023, Table 1):
  Muffin 80, T0-SF 193, NIv2 1,554, CoT 9 -> 1,836.

* Muffin: the Flan 2021 datasets (as Flan 2022 names them: MNLI split into matched and
  mismatched, plus `trivia_qa_wiki_missing`), 3 dialog and 5 program-synthesis tasks.
* T0-SF: the P3 prompt-tasks of the T0 training datasets that Flan 2021 does not hold.
  Each P3 prompt is one task, named `t0sf_{P3 task name}` (P3 names are
  `{dataset}_{prompt name}`, e.g. `t0sf_adversarial_qa_dbert_based_on`): the 193 of the
  published Flan Collection table.
* NIv2: the natural-instructions tasks, read from a task listing (the bundled
  `data/niv2_tasks.txt`, written by `flan-jax data prepare niv2`, or a natural-instructions
  checkout in the data dir), minus the rule in `niv2_keep`: no task overlapping MMLU
  (held out for evaluation) and none whose name is not a valid seqio task name. On the
  published task metadata this rule keeps 1,556 tasks, the set of the published
  `flan_collection_info.csv`; the paper's text says 1,554.
* CoT: the nine chain-of-thought datasets.

Nothing here reads example data; `entries()` only lists files for NIv2.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import re

from flan_jax.tasks import storage

PAPER_COUNTS = {"muffin": 80, "t0sf": 193, "niv2": 1554, "cot": 9}
COLLECTIONS = tuple(PAPER_COUNTS)
DATA_DIR_ENV = "FLAN_JAX_DATA_DIR"
INVERSION_SUFFIX = "_inversion"  # a CoT task's input inversion (CoT-II), registered beside it
DEFAULT_DATA_DIR = "~/.cache/flan_jax/data"
BUNDLED_NIV2_LIST = pathlib.Path(__file__).parent / "data" / "niv2_tasks.txt"


def data_dir(override: str | os.PathLike | None = None) -> pathlib.Path | storage.UrlPath:
  """Where prepared data lives: `override`, else $FLAN_JAX_DATA_DIR, else ~/.cache/...
  A local path, or a URL of any filesystem `tf.io.gfile` supports (`gs://bucket/flan`):
  see `flan_jax.tasks.storage`."""
  value = override or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
  return storage.path(value)


@dataclasses.dataclass(frozen=True)
class Entry:
  """One task of the collection."""
  name: str          # family name registered with seqio (variants add _zsopt, ...)
  collection: str    # muffin | t0sf | niv2 | cot
  dataset: str       # source dataset
  family: str        # template family in families.py
  category: str
  language: str = "en"   # codes, comma-joined when several ("de,en"); "und": not known
  splits: tuple[str, ...] = ("train", "validation")
  metrics: tuple[str, ...] = ("exact_match",)
  tfds_name: str | None = None   # where `data prepare` can get it from TFDS
  options: bool = False  # rows carry answer options to show in the "opt" formats


# --- Muffin ----------------------------------------------------------------------------
# name | template family | category | TFDS name ("-" none / not in TFDS)
_MUFFIN = """
aeslc|summarize|Summarization|aeslc
ag_news_subset|classify|Topic Classification|ag_news_subset
anli_r1|nli|Natural Language Inference|anli/r1
anli_r2|nli|Natural Language Inference|anli/r2
anli_r3|nli|Natural Language Inference|anli/r3
arc_challenge|mcqa|Closed-Book QA|ai2_arc/ARC-Challenge
arc_easy|mcqa|Closed-Book QA|ai2_arc/ARC-Easy
bool_q|rcqa|Reading Comprehension|bool_q
cb|nli|Natural Language Inference|super_glue/cb
cnn_dailymail|summarize|Summarization|cnn_dailymail
cola|classify|Grammatical Acceptability|glue/cola
common_gen|generate|Structured Data to Text|gem/common_gen
copa|mcqa|Commonsense Reasoning|super_glue/copa
coqa|rcqa|Reading Comprehension|coqa
cosmos_qa|mcqa|Commonsense Reading Comprehension|cosmos_qa
dart|generate|Structured Data to Text|gem/dart
definite_pronoun_resolution|mcqa|Coreference Resolution|definite_pronoun_resolution
drop|rcqa|Reading Comprehension|drop
e2e_nlg|generate|Structured Data to Text|gem/e2e_nlg
fix_punct|generate|Punctuation Fixing|para_crawl/enda
gigaword|summarize|Summarization|gigaword
glue_mrpc|nli|Paraphrase Identification|glue/mrpc
glue_qqp|nli|Paraphrase Identification|glue/qqp
hellaswag|mcqa|Commonsense Reasoning|hellaswag
imdb_reviews|classify|Sentiment Analysis|imdb_reviews
lambada|generate|Language Modeling|lambada
math_dataset|cbqa|Mathematical QA|math_dataset/algebra__linear_1d
mnli_matched|nli|Natural Language Inference|glue/mnli
mnli_mismatched|nli|Natural Language Inference|glue/mnli
multi_news|summarize|Summarization|multi_news
multirc|rcqa|Reading Comprehension|super_glue/multirc
natural_questions|cbqa|Closed-Book QA|natural_questions_open
newsroom|summarize|Summarization|newsroom
openbookqa|mcqa|Reading Comprehension|openbookqa
opinion_abstracts_idebate|summarize|Summarization|opinion_abstracts/idebate
opinion_abstracts_rotten_tomatoes|summarize|Summarization|opinion_abstracts/rotten_tomatoes
para_crawl_enes|translate|Translation|para_crawl/enes
paws_wiki|nli|Paraphrase Identification|paws_wiki
piqa|mcqa|Commonsense Reasoning|piqa
qnli|nli|Natural Language Inference|glue/qnli
quac|rcqa|Reading Comprehension|quac
record|rcqa|Commonsense Reading Comprehension|super_glue/record
rte|nli|Natural Language Inference|super_glue/rte
samsum|summarize|Summarization|samsum
sentiment140|classify|Sentiment Analysis|sentiment140
snli|nli|Natural Language Inference|snli
squad_v1|rcqa|Reading Comprehension|squad/v1.1
squad_v2|rcqa|Reading Comprehension|squad/v2.0
sst2|classify|Sentiment Analysis|glue/sst2
story_cloze|mcqa|Commonsense Reasoning|story_cloze/2016
stsb|nli|Paraphrase Identification|glue/stsb
trec|classify|Question Classification|trec
trivia_qa|cbqa|Closed-Book QA|trivia_qa/rc
trivia_qa_wiki_missing|cbqa|Closed-Book QA|trivia_qa/unfiltered.nocontext
true_case|generate|Text Correction|para_crawl/enda
unified_qa_science_inst|mcqa|Closed-Book QA|unified_qa/ai2_science_middle
web_nlg_en|generate|Structured Data to Text|gem/web_nlg_en
wic|nli|Word Sense Disambiguation|super_glue/wic
wiki_lingua_english_en|summarize|Summarization|gem/wiki_lingua_english_en
winogrande|mcqa|Coreference Resolution|winogrande
wmt14_enfr|translate|Translation|wmt14_translate/fr-en
wmt16_translate_csen|translate|Translation|wmt16_translate/cs-en
wmt16_translate_deen|translate|Translation|wmt16_translate/de-en
wmt16_translate_fien|translate|Translation|wmt16_translate/fi-en
wmt16_translate_roen|translate|Translation|wmt16_translate/ro-en
wmt16_translate_ruen|translate|Translation|wmt16_translate/ru-en
wmt16_translate_tren|translate|Translation|wmt16_translate/tr-en
wnli|nli|Natural Language Inference|glue/wnli
word_segment|generate|Word Segmentation|para_crawl/enda
wsc|mcqa|Coreference Resolution|super_glue/wsc.fixed
xsum|summarize|Summarization|xsum
yelp_polarity_reviews|classify|Sentiment Analysis|yelp_polarity_reviews
qrecc|dialog|Conversational QA|q_re_cc
task_master|dialog|Dialog Next Turn Prediction|-
wiki_dialog|dialog|Conversational QA|wiki_dialog
dmcc_python|generate|Code Generation|-
dr_repair_error_comments|generate|Code Repair|-
dr_repair_line_numbers|generate|Code Repair|-
dr_repair_no_errors|generate|Code Repair|-
dr_repair_plain_code|generate|Code Repair|-
"""

# --- T0-SF: the P3 prompt-tasks of T0 training datasets outside Flan 2021 -----------------
# dataset | template family | category | P3 prompt names (task name: t0sf_{dataset}_{prompt})
_T0SF = """
adversarial_qa_dbert|rcqa|Extractive QA|answer_the_following_q,based_on,generate_question,question_context_answer,tell_what_it_is
adversarial_qa_dbidaf|rcqa|Extractive QA|answer_the_following_q,based_on,generate_question,question_context_answer,tell_what_it_is
adversarial_qa_droberta|rcqa|Extractive QA|answer_the_following_q,based_on,generate_question,question_context_answer,tell_what_it_is
amazon_polarity|classify|Sentiment Analysis|Is_this_product_review_positive,Is_this_review,Is_this_review_negative,User_recommend_this_product,convey_negative_or_positive_sentiment,flattering_or_not,negative_or_positive_tone,user_satisfied,would_you_buy
app_reviews|classify|Sentiment Analysis|categorize_rating_using_review,convert_to_rating,convert_to_star_rating,generate_review
cos_e|mcqa|Multiple-Choice QA|v1.11_aligned_with_common_sense,v1.11_description_question_option_id,v1.11_description_question_option_text,v1.11_explain_why_human,v1.11_generate_explanation_given_text,v1.11_i_think,v1.11_question_description_option_id,v1.11_question_description_option_text,v1.11_question_option_description_id,v1.11_question_option_description_text,v1.11_rationale
dbpedia_14|classify|Topic Classification|given_a_choice_of_categories_,given_a_list_of_category_what_does_the_title_belong_to,given_list_what_category_does_the_paragraph_belong_to,pick_one_category_for_the_following_text
dream|mcqa|Multiple-Choice QA|answer_to_dialogue,baseline,generate_first_utterance,generate_last_utterance,read_the_following_conversation_and_answer_the_question
duorc_ParaphraseRC|rcqa|Extractive QA|answer_question,build_story_around_qa,decide_worth_it,extract_answer,generate_question,generate_question_by_answer,movie_director,question_answering,title_generation
duorc_SelfRC|rcqa|Extractive QA|answer_question,build_story_around_qa,decide_worth_it,extract_answer,generate_question,generate_question_by_answer,movie_director,question_answering,title_generation
kilt_tasks_hotpotqa|cbqa|Closed-Book QA|combining_facts,complex_question,final_exam,formulate,straighforward_qa
qasc|mcqa|Multiple-Choice QA|is_correct_1,is_correct_2,qa_with_combined_facts_1,qa_with_separated_facts_1,qa_with_separated_facts_2,qa_with_separated_facts_3,qa_with_separated_facts_4,qa_with_separated_facts_5
quail|mcqa|Multiple-Choice QA|context_description_question_answer_id,context_description_question_answer_text,context_description_question_text,context_question_answer_description_id,context_question_answer_description_text,context_question_description_answer_id,context_question_description_answer_text,context_question_description_text,description_context_question_answer_id,description_context_question_answer_text,description_context_question_text,no_prompt_id,no_prompt_text
quarel|mcqa|Multiple-Choice QA|choose_between,do_not_use,heres_a_story,logic_test,testing_students
quartz|mcqa|Multiple-Choice QA|answer_question_based_on,answer_question_below,given_the_fact_answer_the_q,having_read_above_passage,paragraph_question_plain_concat,read_passage_below_choose,use_info_from_paragraph_question,use_info_from_question_paragraph
quoref|rcqa|Extractive QA|Answer_Friend_Question,Answer_Question_Given_Context,Answer_Test,Context_Contains_Answer,Find_Answer,Found_Context_Online,Given_Context_Answer_Question,Guess_Answer,Guess_Title_For_Context,Read_And_Extract_,What_Is_The_Answer
race_high|mcqa|Multiple-Choice QA|Is_this_the_right_answer,Read_the_article_and_answer_the_question_no_option_,Select_the_best_answer,Select_the_best_answer_generate_span_,Select_the_best_answer_no_instructions_,Taking_a_test,Write_a_multi_choice_question_for_the_following_article,Write_a_multi_choice_question_options_given_
race_middle|mcqa|Multiple-Choice QA|Is_this_the_right_answer,Read_the_article_and_answer_the_question_no_option_,Select_the_best_answer,Select_the_best_answer_generate_span_,Select_the_best_answer_no_instructions_,Taking_a_test,Write_a_multi_choice_question_for_the_following_article,Write_a_multi_choice_question_options_given_
ropes|rcqa|Extractive QA|background_new_situation_answer,background_situation_middle,given_background_situation,new_situation_background_answer,plain_background_situation,plain_bottom_hint,plain_no_background,prompt_beginning,prompt_bottom_hint_beginning,prompt_bottom_no_hint,prompt_mix,read_background_situation
sciq|mcqa|Multiple-Choice QA|Direct_Question,Direct_Question_Closed_Book_,Multiple_Choice,Multiple_Choice_Closed_Book_,Multiple_Choice_Question_First
social_i_qa|mcqa|Multiple-Choice QA|Check_if_a_random_answer_is_valid_or_not,Generate_answer,Generate_the_question_from_the_answer,I_was_wondering,Show_choices_and_generate_answer,Show_choices_and_generate_index
web_questions|cbqa|Closed-Book QA|get_the_answer,potential_correct_answer,question_answer,short_general_knowledge_q,whats_the_answer
wiki_bio|generate|Structured Data to Text|comprehension,guess_person,key_content,what_content,who
wiki_hop|mcqa|Multiple-Choice QA|original_choose_best_object_affirmative_1,original_choose_best_object_affirmative_2,original_choose_best_object_affirmative_3,original_choose_best_object_interrogative_1,original_choose_best_object_interrogative_2,original_explain_relation,original_generate_object,original_generate_subject,original_generate_subject_and_object
wiki_qa|rcqa|Extractive QA|Decide_good_answer,Direct_Answer_to_Question,Generate_Question_from_Topic,Is_This_True_,Jeopardy_style,Topic_Prediction_Answer_Only,Topic_Prediction_Question_Only,Topic_Prediction_Question_and_Answer_Pair,automatic_system,exercise,found_on_google
wiqa|mcqa|Multiple-Choice QA|does_the_supposed_perturbation_have_an_effect,effect_with_label_answer,effect_with_string_answer,what_is_the_final_step_of_the_following_process,what_is_the_missing_first_step,what_might_be_the_first_step_of_the_process,what_might_be_the_last_step_of_the_process,which_of_the_following_is_the_supposed_perturbation
"""

# The P3 prompts whose options FLAN appends (its T0 task type
# "t0_multiple_choice_separated_options", flan/v2/constants_t0.py). Of the other T0-SF
# prompts, 67 already list their choices in the P3 text ("t0_multiple_choice") and 27
# are free-form QA ("t0_question_answer"): neither gets an options block.
T0SF_SEPARATED_OPTIONS = frozenset(f"t0sf_{n}" for n in """
amazon_polarity_Is_this_product_review_positive amazon_polarity_Is_this_review_negative
amazon_polarity_User_recommend_this_product qasc_is_correct_1 qasc_is_correct_2
qasc_qa_with_separated_facts_3 qasc_qa_with_separated_facts_5
quail_context_description_question_text quail_context_question_description_text
quail_description_context_question_text
race_high_Read_the_article_and_answer_the_question_no_option_
race_middle_Read_the_article_and_answer_the_question_no_option_ sciq_Direct_Question
sciq_Direct_Question_Closed_Book_ social_i_qa_Check_if_a_random_answer_is_valid_or_not
social_i_qa_Generate_answer social_i_qa_I_was_wondering wiki_qa_Is_This_True_
wiki_qa_automatic_system""".split())
OPTION_FAMILIES = ("classify", "nli", "mcqa")

# --- CoT ---------------------------------------------------------------------------------
# name | dataset | category  (the seven TSVs we know of are <dataset>_train.tsv)
_COT = """
cot_gsm8k|gsm8k|Grade School Math
cot_strategyqa|strategyqa|Multi-hop Reasoning
cot_aqua|aqua|Algebraic QA
cot_creak|creak|Commonsense over Entity Knowledge
cot_ecqa|ecqa|Commonsense QA
cot_esnli|esnli|Natural Language Inference
cot_qasc|qasc|Multiple-Choice Science QA
cot_qed|qed|Passage-Based QA
cot_sensemaking|sensemaking|Sense Making
"""


def _rows(table: str) -> list[list[str]]:
  return [line.split("|") for line in table.strip().splitlines()]


def _pair_languages(tfds_name: str) -> str:
  """The two languages of a translation dataset from its TFDS name: `wmt16_translate/de-en`
  -> "de,en", `para_crawl/enes` -> "en,es"."""
  pair = tfds_name.rsplit("/", 1)[-1]
  return pair.replace("-", ",") if "-" in pair else f"{pair[:2]},{pair[2:]}"


@functools.cache
def muffin_entries() -> tuple[Entry, ...]:
  return tuple(
      Entry(name=f"muffin_{name}", collection="muffin", dataset=name, family=family,
            category=category, tfds_name=None if tfds == "-" else tfds,
            language=_pair_languages(tfds) if family == "translate" else "en",
            metrics=("token_f1",) if family in ("summarize", "translate", "generate",
                                                    "dialog") else ("exact_match",),
            options=family in OPTION_FAMILIES)
      for name, family, category, tfds in _rows(_MUFFIN))


@functools.cache
def t0sf_entries() -> tuple[Entry, ...]:
  return tuple(
      Entry(name=f"t0sf_{dataset}_{prompt}", collection="t0sf", dataset=dataset, family=family,
            category=category, options=f"t0sf_{dataset}_{prompt}" in T0SF_SEPARATED_OPTIONS)
      for dataset, family, category, prompts in _rows(_T0SF) for prompt in prompts.split(","))


@functools.cache
def cot_entries() -> tuple[Entry, ...]:
  return tuple(Entry(name=name, collection="cot", dataset=dataset, family="cot",
                     category=category, splits=("train", "validation"))
               for name, dataset, category in _rows(_COT))


# --- NIv2 --------------------------------------------------------------------------------
_MMLU_OVERLAP = re.compile(r"_mmmlu_")
_SEQIO_NAME = re.compile(r"^[\w.:]+$")


def niv2_keep(task_id: str) -> bool:
  """Whether a natural-instructions task belongs to the Flan 2022 NIv2 collection.

  Out: the 57 `_mmmlu_` tasks (MMLU is held out), and the 41 ids with a hyphen. Those are
  the repository's file names of tasks that FLAN's task metadata (our listing) also holds
  under a seqio-safe twin with "_" (same task number, same examples), so keeping both
  would count those tasks twice. The kept ids find their files through
  `readers.niv2_task_file`."""
  return not _MMLU_OVERLAP.search(task_id) and bool(_SEQIO_NAME.match(task_id))


def niv2_task_path(root, task_id: str):
  """Where a catalogue id's natural-instructions file is looked for (see
  `readers.niv2_task_file` for the repository's other spellings)."""
  return data_dir(root) / "natural-instructions" / "tasks" / f"{task_id}.json"


def niv2_listing(root: str | os.PathLike | None = None) -> list[str] | None:
  """Every natural-instructions task id we can find (before `niv2_keep`), or None.

  Looks at, in order: the bundled list; `<data_dir>/niv2/niv2_tasks.txt`; a checkout
  `<data_dir>/natural-instructions/tasks/*.json`.
  """
  base = data_dir(root)
  for listing in (BUNDLED_NIV2_LIST, base / "niv2" / "niv2_tasks.txt"):
    if listing.is_file():
      return [l.strip() for l in listing.read_text().splitlines() if l.strip()]
  tasks = base / "natural-instructions" / "tasks"
  if tasks.is_dir():
    return sorted(p.stem for p in tasks.glob("task*.json"))
  return None


# The languages natural-instructions task files name (Input_language, Output_language),
# as ISO 639-1 codes (639-2 where there is none); a name not here is kept lower-cased.
LANGUAGE_CODES = {
    "English": "en", "Spanish": "es", "Japanese": "ja", "Persian": "fa", "Hindi": "hi",
    "French": "fr", "Chinese": "zh", "Bengali": "bn", "German": "de", "Gujarati": "gu",
    "Telugu": "te", "Italian": "it", "Arabic": "ar", "Polish": "pl", "Tamil": "ta",
    "Marathi": "mr", "Malayalam": "ml", "Oriya": "or", "Panjabi": "pa", "Punjabi": "pa",
    "Portuguese": "pt", "Urdu": "ur", "Galician": "gl", "Hebrew": "he", "Korean": "ko",
    "Catalan": "ca", "Thai": "th", "Dutch": "nl", "Russian": "ru", "Turkish": "tr",
    "Indonesian": "id", "Vietnamese": "vi", "Bulgarian": "bg", "Filipino": "fil",
    "Central Khmer": "km", "Khmer": "km", "Lao": "lo", "Croatian": "hr", "Swedish": "sv",
    "Yoruba": "yo", "Czech": "cs", "Finnish": "fi", "Romanian": "ro", "Kurdish": "ku",
    "Burmese": "my", "Malay": "ms", "Somali": "so", "Tagalog": "tl", "Swahili": "sw",
    "Sinhala": "si", "Kannada": "kn", "Zhuang": "za", "Igbo": "ig", "Xhosa": "xh",
    "Haitian": "ht", "Estonian": "et", "Slovak": "sk", "Lithuanian": "lt", "Greek": "el",
    "Nepali": "ne", "Assamese": "as", "Norwegian": "no", "Danish": "da", "Ukrainian": "uk",
    "Hungarian": "hu", "Serbian": "sr", "Slovenian": "sl", "Latvian": "lv", "Amharic": "am",
    "Hausa": "ha", "Zulu": "zu", "Sindhi": "sd", "Pashto": "ps", "Welsh": "cy",
    "Irish": "ga", "Basque": "eu", "Afrikaans": "af", "Icelandic": "is", "Tatar": "tt",
}
UNKNOWN_LANGUAGE = "und"   # ISO 639 "undetermined": NIv2 before `data prepare niv2`
NIV2_INFO_FILE = pathlib.Path("niv2") / "niv2_task_info.tsv"


def language_codes(names) -> str:
  """Language names -> comma-joined codes, each once, in order."""
  codes = [LANGUAGE_CODES.get(n.strip(), n.strip().lower()) for n in names if n.strip()]
  return ",".join(dict.fromkeys(codes)) or UNKNOWN_LANGUAGE


def niv2_task_info(root: str | os.PathLike | None = None) -> dict[str, tuple[str, str]]:
  """Task id -> (languages, category), from `<data_dir>/niv2/niv2_task_info.tsv`, which
  `flan-jax data prepare niv2` writes from the task files; empty when absent."""
  path = data_dir(root) / NIV2_INFO_FILE
  if not path.is_file():
    return {}
  rows = (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())
  return {r[0]: (r[1], r[2]) for r in rows if len(r) == 3}


def niv2_entries(root: str | os.PathLike | None = None) -> tuple[Entry, ...]:
  listing = niv2_listing(root)
  info = niv2_task_info(root)
  unknown = (UNKNOWN_LANGUAGE, "NIv2")
  return tuple(Entry(name=f"niv2_{task_id}", collection="niv2", dataset=task_id,
                     family="niv2", splits=("train", "validation"),
                     language=info.get(task_id, unknown)[0],
                     category=info.get(task_id, unknown)[1])
               for task_id in sorted(set(listing or ())) if niv2_keep(task_id))


def entries(collection: str | None = None, *, root=None) -> list[Entry]:
  """The catalogue, optionally of one collection, in a fixed order."""
  make = {"muffin": muffin_entries, "t0sf": t0sf_entries, "cot": cot_entries,
          "niv2": lambda: niv2_entries(root)}
  if collection is not None and collection not in make:
    raise ValueError(f"unknown collection {collection!r}; use one of {list(make)}")
  names = [collection] if collection else list(COLLECTIONS)
  return [e for c in names for e in make[c]()]


def counts(root=None) -> dict[str, int]:
  return {c: len(entries(c, root=root)) for c in COLLECTIONS}


def get(name: str, root=None) -> Entry:
  for e in entries(root=root):
    if e.name == name:
      return e
  raise KeyError(f"no task {name!r} in the Flan 2022 catalogue; see `flan-jax tasks list`")
