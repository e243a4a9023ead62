"""Template families of the Flan 2022 collection, in our own words.

Each family fixes the example fields its templates read (the canonical fields that
`data prepare` writes per task); "inversion" templates swap what is given and what is
asked (e.g. write the question for an answer), as the Flan Collection's input
inversion does. `{options}` marks where the answer options go in the "opt" formats.
"""
from __future__ import annotations

import functools

from flan_jax.tasks.templates import FewShotPattern as P
from flan_jax.tasks.templates import Template as T

I = functools.partial(T, inverted=True)  # an input inversion: never shows options

FIELDS = {
    "classify": ("text", "answer"),
    "nli": ("premise", "hypothesis", "answer"),
    "rcqa": ("context", "question", "answer"),
    "cbqa": ("question", "answer"),
    "mcqa": ("question", "answer"),
    "summarize": ("text", "answer"),
    "translate": ("text", "source_lang", "target_lang", "answer"),
    "generate": ("text", "answer"),
    "dialog": ("text", "answer"),
    "niv2": ("definition", "input", "output"),
    "cot": ("question", "answer", "rationale"),
}

TEMPLATES: dict[str, tuple[T, ...]] = {
    "classify": (
        T("{text}\n\nWhich label fits this text best?{options}", "{answer}"),
        T("Read the following and pick its category.\n\n{text}{options}", "{answer}"),
        T("Text: {text}\nLabel:{options}", "{answer}"),
        T("How would you classify this?\n{text}{options}", "{answer}"),
        T("{text}\n\nWhat is the right tag for the passage above?{options}", "{answer}"),
        T("Assign one of the labels to the text below.{options}\n\n{text}", "{answer}"),
        T("Here is some text: \"{text}\" What kind of text is it?{options}", "{answer}"),
        T("Decide the class of this input.\nInput: {text}{options}", "{answer}"),
        I("Write a short text that would be labelled \"{answer}\".", "{text}"),
        I("Give an example of something labelled {answer}.", "{text}"),
    ),
    "nli": (
        T("{premise}\n\nDoes it follow that \"{hypothesis}\"?{options}", "{answer}"),
        T("Premise: {premise}\nHypothesis: {hypothesis}\nRelation?{options}", "{answer}"),
        T("Given that {premise}, can we say that {hypothesis}?{options}", "{answer}"),
        T("Read: {premise}\n\nNow judge the claim: {hypothesis}{options}", "{answer}"),
        T("First statement: {premise}\nSecond statement: {hypothesis}\nHow are they "
          "related?{options}", "{answer}"),
        T("Is \"{hypothesis}\" supported by the text below?\n\n{premise}{options}", "{answer}"),
        T("{premise}\nQuestion: {hypothesis} Answer with one of the options.{options}",
          "{answer}"),
        T("Consider these two sentences.\nA: {premise}\nB: {hypothesis}\nVerdict:{options}",
          "{answer}"),
        I("Write a sentence that, given \"{premise}\", gets the label \"{answer}\".",
          "{hypothesis}"),
        I("Here is a conclusion: \"{hypothesis}\" ({answer}). Write a premise for it.",
          "{premise}"),
    ),
    "rcqa": (
        T("{context}\n\nAnswer this question about the text: {question}", "{answer}"),
        T("Read the passage and answer.\n\nPassage: {context}\nQuestion: {question}",
          "{answer}"),
        T("Context: {context}\nQ: {question}\nA:", "{answer}"),
        T("Use the text to answer \"{question}\"\n\n{context}", "{answer}"),
        T("{question}\n\nThe answer is somewhere in here:\n{context}", "{answer}"),
        T("Here is an article.\n{context}\n\nBased on it, {question}", "{answer}"),
        T("Background: {context}\n\nQuestion: {question}\nShort answer:", "{answer}"),
        T("Answer the question from the given text only.\nText: {context}\nQuestion: "
          "{question}", "{answer}"),
        I("{context}\n\nWrite a question about this text whose answer is \"{answer}\".",
          "{question}"),
        I("Passage: {context}\nAnswer: {answer}\nWhat question was asked?", "{question}"),
    ),
    "cbqa": (
        T("{question}", "{answer}"),
        T("Answer this question: {question}", "{answer}"),
        T("Q: {question}\nA:", "{answer}"),
        T("Quick question: {question}", "{answer}"),
        T("What is the answer to the following?\n{question}", "{answer}"),
        T("Please respond to this trivia question.\n{question}", "{answer}"),
        T("{question} Give a short answer.", "{answer}"),
        T("Here's something I want to know: {question}", "{answer}"),
        I("Write a question whose answer is \"{answer}\".", "{question}"),
        I("Answer: {answer}\nWhat is a question for this answer?", "{question}"),
    ),
    "mcqa": (
        T("{question}{options}", "{answer}"),
        T("Choose the correct answer.\n{question}{options}", "{answer}"),
        T("Question: {question}\nPick one:{options}", "{answer}"),
        T("{question}\n\nWhich option is right?{options}", "{answer}"),
        T("Answer the multiple-choice question.\n\n{question}{options}", "{answer}"),
        T("Select the best answer to: {question}{options}", "{answer}"),
        T("Here is a question: {question}\nWhat is the answer?{options}", "{answer}"),
        T("Problem: {question}{options}\nSolution:", "{answer}"),
        I("Write a question that has \"{answer}\" as its correct answer.", "{question}"),
        I("The correct answer is {answer}. What might the question have been?", "{question}"),
    ),
    "summarize": (
        T("{text}\n\nSummarize the text above.", "{answer}"),
        T("Write a short summary:\n\n{text}", "{answer}"),
        T("Article: {text}\n\nTL;DR:", "{answer}"),
        T("What is this text about, in one or two sentences?\n{text}", "{answer}"),
        T("Condense the following into a brief summary.\n\n{text}", "{answer}"),
        T("{text}\n\nGive this a headline-style summary.", "{answer}"),
        T("Read and summarize.\nText: {text}\nSummary:", "{answer}"),
        T("Here is a document.\n{text}\nWhat are its key points?", "{answer}"),
        I("Write a text that could be summarized as: {answer}", "{text}"),
        I("Summary: {answer}\n\nWrite the full text this summary comes from.", "{text}"),
    ),
    "translate": (
        T("Translate from {source_lang} to {target_lang}:\n\n{text}", "{answer}"),
        T("{text}\n\nSay this in {target_lang}.", "{answer}"),
        T("How do you say \"{text}\" in {target_lang}?", "{answer}"),
        T("{source_lang}: {text}\n{target_lang}:", "{answer}"),
        T("Render this {source_lang} sentence in {target_lang}: {text}", "{answer}"),
        T("Translation task ({source_lang} to {target_lang}).\nInput: {text}", "{answer}"),
        T("Please give the {target_lang} version of the text below.\n{text}", "{answer}"),
        T("{text}\nTranslate into {target_lang}.", "{answer}"),
        I("Translate from {target_lang} to {source_lang}:\n\n{answer}", "{text}"),
        I("What is the {source_lang} original of this {target_lang} text?\n{answer}",
          "{text}"),
    ),
    "generate": (
        T("{text}", "{answer}"),
        T("Complete the task.\n\n{text}", "{answer}"),
        T("Input: {text}\nOutput:", "{answer}"),
        T("{text}\n\nWrite the result.", "{answer}"),
        T("Here is the input.\n{text}\nProduce the output.", "{answer}"),
        T("Given: {text}\nResponse:", "{answer}"),
        T("Transform the following as instructed.\n{text}", "{answer}"),
        T("{text}\nAnswer:", "{answer}"),
        I("Output: {answer}\nWhat input would produce this?", "{text}"),
        I("Write an input for which the right output is:\n{answer}", "{text}"),
    ),
    "dialog": (
        T("{text}\n\nWhat comes next in this conversation?", "{answer}"),
        T("Continue the dialog.\n\n{text}", "{answer}"),
        T("Conversation so far:\n{text}\nNext turn:", "{answer}"),
        T("{text}\nReply:", "{answer}"),
        T("Here is a chat.\n{text}\nWrite the next message.", "{answer}"),
        T("Read the dialog and respond as the next speaker.\n{text}", "{answer}"),
        T("{text}\n\nHow should the conversation continue?", "{answer}"),
        T("Dialog:\n{text}\nResponse:", "{answer}"),
        I("Write a conversation that could end with: \"{answer}\"", "{text}"),
        I("The last turn was \"{answer}\". What conversation led to it?", "{text}"),
    ),
    "niv2": (
        T("{definition}\n\n{input}", "{output}"),
        T("Definition: {definition}\n\nInput: {input}\nOutput:", "{output}"),
        T("Here is what to do: {definition}\n\n{input}\nAnswer:", "{output}"),
        T("Task: {definition}\n{input}", "{output}"),
        T("{input}\n\nInstructions: {definition}", "{output}"),
        T("Follow the instructions.\n{definition}\n\nHere is the input: {input}", "{output}"),
        T("Instructions: {definition}\nQuestion: {input}\nAnswer:", "{output}"),
        T("{definition}\nInput: {input}", "{output}"),
        T("Detailed instructions: {definition}\n\n{input}\nSolution:", "{output}"),
        T("You are given a task. {definition}\n\n{input}", "{output}"),
    ),
    "cot": (
        T("{question}", "{answer}"),
        T("Answer the following question.\n{question}", "{answer}"),
        T("Q: {question}\nA:", "{answer}"),
        T("{question}\nGive your answer.", "{answer}"),
        T("Question: {question}\nWhat is the answer?", "{answer}"),
        T("Solve this: {question}", "{answer}"),
        T("Think about it carefully. {question}", "{answer}"),
        T("{question}\nAnswer:", "{answer}"),
        T("Here is a reasoning problem.\n{question}", "{answer}"),
        T("Please answer: {question}", "{answer}"),
    ),
}

# T0-SF: FLAN wraps each P3 prompt (its line breaks turned into spaces, readers.p3_fields)
# in one of ten T0 templates. `T0_WRAPPERS` serve the free-form prompts and those that list
# their own choices in the P3 text; `T0_WRAPPERS_OPTIONS` the prompts whose choices FLAN
# shows as a separate options block (`{options}`, in a style drawn per example).
T0_WRAPPERS = (
    T("{question}", "{answer}"),
    T("{question}\nAnswer:", "{answer}"),
    T("{question}\nA:", "{answer}"),
    T("Q: {question}\nA:", "{answer}"),
    T("Question: {question}\nResponse:", "{answer}"),
    T("Respond to the following. {question}\nAnswer:", "{answer}"),
    T("Here is a question: {question}\nThe right answer:", "{answer}"),
    T("{question}\nWhat is the answer?", "{answer}"),
    T("Please help with this question: {question}\nA:", "{answer}"),
    T("Consider this: {question}\nYour answer:", "{answer}"),
)
T0_WRAPPERS_OPTIONS = (
    T("{question}{options}", "{answer}"),
    T("{question}{options}\nAnswer:", "{answer}"),
    T("{question}{options}\n\nA:", "{answer}"),
    T("Q: {question}{options}\nA:", "{answer}"),
    T("Choose the answer to this question: {question}{options}\nAnswer:", "{answer}"),
    T("{options}\n\n{question}\nAnswer:", "{answer}"),
    T("{options}\nQ: {question}\nA:", "{answer}"),
    T("{question}{options}\nThe correct choice is:", "{answer}"),
    T("From the choices below, answer: {question}{options}\nA:", "{answer}"),
    T("Question: {question}{options}\nThe answer is:", "{answer}"),
)

# Dialog input inversions (FLAN's "Dialog-II"): given a turn, write the dialog before it.
DIALOG_INVERSIONS = (
    I("Write a conversation that leads up to this reply: \"{answer}\"", "{text}"),
    I("The next thing said is \"{answer}\". What was said before it?", "{text}"),
    I("Reply: {answer}\n\nWrite the dialog this reply answers.", "{text}"),
    I("Make up the earlier turns of a chat whose next message is:\n{answer}", "{text}"),
    I("{answer}\n\nWhat conversation could come right before this turn?", "{text}"),
    I("Here is a turn from a dialog: {answer}\nWrite the dialog up to it.", "{text}"),
    I("Someone answered \"{answer}\". Write the conversation that prompted it.", "{text}"),
    I("Next turn: {answer}\nPrevious turns:", "{text}"),
    I("Invent the dialog history for the response below.\n{answer}", "{text}"),
    I("Given the final reply \"{answer}\", reconstruct the chat that came before.", "{text}"),
)

# CoT input inversions (FLAN's "CoT-II") in FLAN's four directions, three templates each
# (twelve: x-shot's 25 consecutive exemplars then keep 2 or 3 of the query's template).
COT_INVERSION = (
    # the question, from the rationale and the answer
    I("Answer: {answer}\nReasoning: {rationale}\nWhat was the question?", "{question}"),
    I("Here is an explanation: {rationale} The answer is {answer}. Write the question.",
      "{question}"),
    I("Someone reasoned \"{rationale}\" and concluded \"{answer}\". What were they asked?",
      "{question}"),
    # the rationale, from the question and the answer
    I("{question}\nThe answer is {answer}. Explain how to get there.", "{rationale}"),
    I("Question: {question}\nAnswer: {answer}\nWrite the reasoning that leads to this answer.",
      "{rationale}"),
    I("Why is \"{answer}\" the answer to the following? {question}", "{rationale}"),
    # the question and the answer, from the rationale
    I("Reasoning: {rationale}\nWhat question and answer does this reasoning go with?",
      "Question: {question}\nAnswer: {answer}"),
    I("Come up with a question and its answer that fit this explanation.\n{rationale}",
      "Q: {question}\nA: {answer}"),
    I("{rationale}\n\nWrite the question this reasons about, then its answer.",
      "{question}\nAnswer: {answer}"),
    # the question and the rationale, from the answer
    I("The answer is {answer}. Write a question with this answer and the reasoning for it.",
      "Question: {question}\nReasoning: {rationale}"),
    I("Make up a problem whose answer is \"{answer}\", and explain the steps.",
      "{question}\nExplanation: {rationale}"),
    I("Answer: {answer}\nGive a question for it, then reason to the answer.",
      "Q: {question}\nStep by step: {rationale}"),
)

# CoT answers end in one of several phrasings (FLAN's CoT templates vary them too); every
# phrasing is one that `metrics.cot_answer` and `metrics.extract_answer` (the evaluator's) read back.
COT_ANSWERS = (
    "{rationale} So the answer is {target}.",
    "{rationale} Therefore, the answer is {target}.",
    "{rationale}\nThe answer: {target}.",
    "{rationale} Thus, the final answer is {target}.",
    "{rationale}\nSo the final answer is {target}.",
)
# CoT triggers, one per template in turn (FLAN's CoT templates each carry their own); the
# evaluation suites keep the benchmarks' own "Let's think step by step.".
COT_TRIGGERS = (
    "Let's think step by step.",
    "Let's work this out in steps.",
    "Reason it through first.",
    "Think carefully, then answer.",
    "Let's reason about it.",
    "Step-by-step reasoning:",
    "Explain your reasoning, then give the answer.",
)


def _cot(inputs: str, k: int) -> T:
  return T(inputs, "{answer}", cot_trigger=COT_TRIGGERS[k % len(COT_TRIGGERS)],
           cot_targets=COT_ANSWERS[(3 * k) % len(COT_ANSWERS)])


# Dataset-specific CoT templates (the published CoT TSVs hold the question with its own
# options, when it has any): each states the task of its dataset; ten per dataset, its four
# own prompts then six of the general ones.
_COT_PROMPTS = {
    "gsm8k": ("Solve this math word problem.\n{question}",
              "{question} Work out the number.", "Q: {question}\nA:",
              "A grade-school math problem: {question}\nWhat is the numeric answer?"),
    "strategyqa": ("Answer yes or no, reasoning it out first: {question}",
                   "Q: {question}\nA:", "{question}\nThink about the facts you need.",
                   "Question: {question} (yes or no)"),
    "aqua": ("Solve this algebra problem and pick the right option.\n{question}",
             "{question}\nWhich option is correct?", "Q: {question}\nA:",
             "Work out the answer to this quantitative question.\n{question}"),
    "creak": ("Decide whether the claim holds.\n{question}", "Q: {question}\nA:",
              "{question}\nUse what you know about the entity.",
              "Fact-check this using common knowledge: {question}"),
    "ecqa": ("Pick the most sensible answer.\n{question}", "Q: {question}\nA:",
             "Use commonsense to answer: {question}",
             "{question}\nWhich choice fits best?"),
    "esnli": ("Premise and hypothesis: decide the relation.\n{question}",
              "Q: {question}\nA:", "{question}\nDoes the hypothesis follow?",
              "Natural language inference: {question}"),
    "qasc": ("Answer this science question.\n{question}", "Q: {question}\nA:",
             "Combine two facts to answer: {question}",
             "{question}\nWhich option is right?"),
    "qed": ("Answer the question from the passage.\n{question}", "Q: {question}\nA:",
            "{question}\nFind the answer span.", "Read and answer: {question}"),
    "sensemaking": ("Spot the sentence that makes no sense.\n{question}",
                    "Q: {question}\nA:", "{question}\nUse commonsense.",
                    "Commonsense check: {question}"),
}
_COT_GENERAL = [t.inputs for t in TEMPLATES["cot"] if t.inputs != "Q: {question}\nA:"]
COT_TEMPLATES: dict[str, tuple[T, ...]] = {
    dataset: tuple(_cot(p, k) for k, p in enumerate(prompts + tuple(_COT_GENERAL[:10 - len(prompts)])))
    for dataset, prompts in _COT_PROMPTS.items()
}

# NIv2 few-shot, FLAN's two kinds at equal shares. Positive: the task definition, one of its
# positive examples with its explanation (`{demonstrations}`), then the query.
NIV2_FEWSHOT = (
    T("{definition}\n\n{demonstrations}\n\nNow do the same for this input.\nInput: {input}"
      "\nOutput:", "{output}"),
    T("Definition: {definition}\n\nSolved example:\n{demonstrations}\n\nNew input: "
      "{input}\nSolution:", "{output}"),
    T("Task: {definition}\n\n{demonstrations}\n\nYour turn.\nInput: {input}\nOutput:",
      "{output}"),
    T("Instructions: {definition}\nHere is an example with an explanation.\n\n"
      "{demonstrations}\n\nInput: {input}\nOutput:", "{output}"),
    T("{definition}\nStudy this worked example first.\n{demonstrations}\n\nNow solve: {input}\nAnswer:",
      "{output}"),
    T("Detailed instructions: {definition}\n\n{demonstrations}\n\nProblem: {input}\nSolution:",
      "{output}"),
    T("You are given a task. {definition}\nAn example and why its answer is right:\n{demonstrations}\n\n"
      "Apply the same to: {input}\nOutput:", "{output}"),
    T("Teacher: {definition}\n{demonstrations}\n\nStudent input: {input}\nStudent output:", "{output}"),
    T("Read the task and the example, then answer.\nTask: {definition}\n{demonstrations}\n\n"
      "Input: {input}\nOutput:", "{output}"),
    T("{definition}\n\nFor instance:\n{demonstrations}\n\nQ: {input}\nA:", "{output}"),
)
# Instances: the task definition, two other instances of the task as exemplars (input and
# output, no explanation: `{demonstrations}`), then the query.
NIV2_INSTANCES = (
    T("{definition}\n\n{demonstrations}\n\nInput: {input}\nOutput:", "{output}"),
    T("Definition: {definition}\n\nExamples:\n{demonstrations}\n\nNew input: {input}\nSolution:",
      "{output}"),
    T("Task: {definition}\n\n{demonstrations}\n\nNow this one.\nInput: {input}\nOutput:", "{output}"),
    T("Instructions: {definition}\nSome inputs with their outputs:\n\n{demonstrations}\n\n"
      "Input: {input}\nOutput:", "{output}"),
    T("{definition}\nSee how it is done:\n{demonstrations}\n\nYour input: {input}\nYour output:",
      "{output}"),
    T("Detailed instructions: {definition}\n\n{demonstrations}\n\nProblem: {input}\nSolution:",
      "{output}"),
    T("Follow the instructions. {definition}\nPrevious cases:\n{demonstrations}\n\nCase: {input}\n"
      "Result:", "{output}"),
    T("Teacher: {definition}\n{demonstrations}\n\nStudent input: {input}\nStudent output:", "{output}"),
    T("Here is a task with solved cases.\nTask: {definition}\n{demonstrations}\n\nInput: {input}\n"
      "Output:", "{output}"),
    T("{definition}\n\n{demonstrations}\n\nQ: {input}\nA:", "{output}"),
)


# Few-shot prompt patterns per family: (input prefix, answer prefix, separator between
# an exemplar's input and answer, separator between exemplars). FLAN's patterns carry
# prefixes such as "Q:"/"A:" and separators such as "\n****\n"; these are ours.
_SEPARATORS = (("\n", "\n\n"), ("\n\n", "\n\n\n"), ("\n", "\n\n\n"),
               ("\n****\n", "\n\n\n"), ("\n---\n", "\n\n"))
_PREFIXES = {
    "classify": (("", ""), ("Text: ", "Label: "), ("Input: ", "Category: "),
                 ("Q: ", "A: "), ("Problem: ", "Answer: ")),
    "nli": (("", ""), ("Q: ", "A: "), ("Question: ", "Answer: "), ("Problem: ", "A: "),
            ("Input: ", "Verdict: ")),
    "rcqa": (("", ""), ("Q: ", "A: "), ("Question: ", "Answer: "), ("Read: ", "Answer: "),
             ("Problem: ", "Solution: ")),
    "cbqa": (("", ""), ("Q: ", "A: "), ("Question: ", "Answer: "), ("Trivia: ", "Answer: "),
             ("Problem: ", "A: ")),
    "mcqa": (("", ""), ("Q: ", "A: "), ("Question: ", "Answer: "), ("Problem: ", "Answer: "),
             ("Test: ", "Choice: ")),
    "summarize": (("", ""), ("Article: ", "Summary: "), ("Text: ", "TL;DR: "),
                  ("Input: ", "Short version: "), ("Document: ", "Summary: ")),
    "translate": (("", ""), ("Source: ", "Translation: "), ("Q: ", "A: "),
                  ("Input: ", "Output: "), ("Problem: ", "Solution: ")),
    "generate": (("", ""), ("Input: ", "Output: "), ("Q: ", "A: "),
                 ("Problem: ", "Solution: "), ("Data: ", "Text: ")),
    "dialog": (("", ""), ("Conversation: ", "Next: "), ("Input: ", "Response: "),
               ("Q: ", "A: "), ("Chat: ", "Reply: ")),
    "niv2": (("", ""), ("Input: ", "Output: ")),
    "t0": (("", ""), ("Q: ", "A: "), ("Question: ", "Answer: "), ("Problem: ", "Answer: "),
           ("input: ", "output: ")),
    "cot": (("", ""),),   # CoT templates carry their own "Q:"/"A:" where they want them
}
FEWSHOT_PATTERNS: dict[str, tuple[P, ...]] = {
    family: tuple(P(ip, tp, xy, sep) for ip, tp in prefixes for xy, sep in _SEPARATORS)
    for family, prefixes in _PREFIXES.items()
}
