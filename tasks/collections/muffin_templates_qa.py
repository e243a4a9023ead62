"""Dataset templates of the Muffin question-answering and multiple-choice tasks, in our words.

The same layout as `muffin_templates.py` (whose `DATASETS` maps every dataset to its
group): `opt` templates for the "opt" formats (with `{options}` where the rows carry
options), `noopt` ones for the "noopt" formats, each set ending with one input inversion.
Each group here is one dataset's, except TRIVIA_QA (TriviaQA and its questions without a
Wikipedia page: one task, one question set). Fields are those of the dataset's template
family (families.FIELDS): rcqa `context, question, answer`; mcqa `question, answer`
(+ options); cbqa `question, answer`. What the converters put in each field is in
tfds_converters.py (e.g. CosmosQA's `question` holds its context and question).
"""
from __future__ import annotations

from flan_jax.tasks.collections.families import I
from flan_jax.tasks.collections.families import T

COQA = dict(  # CoQA: a story and its numbered question sequence -> numbered answers
    opt=(
        T("{context}\n\nAnswer these questions about the story in order, numbering each "
          "answer:\n{question}", "{answer}"),
        T("Read the story, then answer the questions that follow one another.\n\nStory: "
          "{context}\n\nQuestions:\n{question}\n\nAnswers:", "{answer}"),
        T("{context}\n\nA reader asked a series of questions about this text. Give a short "
          "numbered answer to each.\n{question}", "{answer}"),
        T("Conversational question answering. Later questions may refer back to earlier "
          "ones.\nPassage: {context}\n{question}", "{answer}"),
        T("Here is a passage:\n{context}\n\nNow reply briefly to each numbered "
          "question.\n{question}", "{answer}"),
        T("{question}\n\nAnswer the numbered questions above using this text:\n{context}",
          "{answer}"),
        T("Text: {context}\n\nGive the answers, one per line with its number:\n{question}",
          "{answer}"),
        I("{context}\n\nThese are the numbered answers of a conversation about the text:\n"
          "{answer}\nWrite the questions that were asked, numbered the same way.",
          "{question}"),
    ),
    noopt=(
        T("{context}\n\nAnswer each question in turn:\n{question}", "{answer}"),
        T("Story:\n{context}\n\nQuestions:\n{question}\n\nNumbered answers:", "{answer}"),
        T("Use the passage to answer this chain of questions.\n\n{context}\n\n{question}",
          "{answer}"),
        T("Read this and answer the follow-up questions briefly.\n{context}\n{question}",
          "{answer}"),
        T("{context}\nQ:\n{question}\nA:", "{answer}"),
        T("Someone read the text below and kept asking questions about it.\n{context}\n\n"
          "{question}\n\nWhat are the answers?", "{answer}"),
        T("Passage: {context}\nAnswer every question, keeping the numbering.\n{question}",
          "{answer}"),
        I("Passage: {context}\nNumbered answers:\n{answer}\nWhat questions, in this order, "
          "would these answer?", "{question}"),
    ),
)

COSMOS_QA = dict(  # CosmosQA: a short narrative + a question about what is implied
    opt=(
        T("{question}\nAccording to the story, which answer is right?{options}", "{answer}"),
        T("Read the text and answer the question by reading between the lines.\n"
          "{question}{options}", "{answer}"),
        T("{question}\nPick the most plausible answer.{options}", "{answer}"),
        T("Commonsense reading comprehension: {question}{options}", "{answer}"),
        T("Here is a story and a question about it.\n{question}\nWhich answer makes the "
          "most sense?{options}", "{answer}"),
        T("Using everyday knowledge about people and situations, answer:\n{question}"
          "{options}", "{answer}"),
        T("{question}\n\nChoose the best option.{options}", "{answer}"),
        I("Write a short personal story and a question about it whose most sensible "
          "answer is \"{answer}\".", "{question}"),
    ),
    noopt=(
        T("{question}\nAnswer from what the story implies.", "{answer}"),
        T("Read the passage and answer the question with a short phrase.\n{question}",
          "{answer}"),
        T("{question}\nAnswer using common sense about the situation.", "{answer}"),
        T("Story and question: {question}\nAnswer:", "{answer}"),
        T("What is the most likely answer?\n{question}", "{answer}"),
        T("Think about what the narrator implies. {question}", "{answer}"),
        T("Answer this question about the short text: {question}", "{answer}"),
        I("Answer: {answer}\nWrite a brief narrative and a question about it that this "
          "answer fits.", "{question}"),
    ),
)

PRONOUN = dict(  # Definite Pronoun Resolution: who a pronoun refers to
    opt=(
        T("Sentence and question: {question}{options}", "{answer}"),
        T("Resolve the pronoun.\n{question}{options}", "{answer}"),
        T("In the sentence below, which candidate does the pronoun point to?\n{question}"
          "{options}", "{answer}"),
        T("{question}\nPick the noun phrase the pronoun stands for.{options}", "{answer}"),
        T("Pronoun resolution: {question}{options}", "{answer}"),
        T("Read the sentence and decide whom the pronoun means.\n{question}{options}",
          "{answer}"),
        T("{question}\n\nWhich of these is the referent?{options}", "{answer}"),
        I("Write a sentence with a pronoun that refers to \"{answer}\", then ask who the "
          "pronoun is.", "{question}"),
    ),
    noopt=(
        T("{question}\n(Answer with the noun phrase.)", "{answer}"),
        T("Work out who the pronoun refers to.\n{question}", "{answer}"),
        T("{question}\nName the person or thing the pronoun means.", "{answer}"),
        T("Coreference question: {question}", "{answer}"),
        T("Sentence and question: {question}\nReferent:", "{answer}"),
        T("Read carefully and answer: {question}", "{answer}"),
        T("Which noun phrase is the pronoun replacing here? {question}", "{answer}"),
        I("The pronoun should refer to {answer}. Write such a sentence and ask about the "
          "pronoun.", "{question}"),
    ),
)

DROP = dict(  # DROP: counting, arithmetic and sorting over a passage
    opt=(
        T("{context}\n\nAnswer the question, doing any counting or arithmetic it needs: "
          "{question}", "{answer}"),
        T("Read the passage and compute the answer.\n\nPassage: {context}\nQuestion: "
          "{question}\nAnswer:", "{answer}"),
        T("{context}\n\n{question} (the answer may be a number, a date or a span of the "
          "text)", "{answer}"),
        T("Discrete reasoning over a paragraph.\n{context}\nQ: {question}", "{answer}"),
        T("Here is a report:\n{context}\n\nBased on the numbers in it, {question}",
          "{answer}"),
        T("Question: {question}\nFind the answer by reasoning over this text:\n{context}",
          "{answer}"),
        T("Passage: {context}\n\nWork it out: {question}", "{answer}"),
        I("{context}\n\nWrite a question about this passage that needs counting, comparing "
          "or adding to answer, and whose answer is {answer}.", "{question}"),
    ),
    noopt=(
        T("{context}\n\nQuestion (it may need arithmetic): {question}", "{answer}"),
        T("Answer based on the passage; some arithmetic may be needed.\n{context}\n"
          "Question: {question}", "{answer}"),
        T("Passage:\n{context}\n\nQ: {question}\nA:", "{answer}"),
        T("{context}\nUsing the facts and figures above, answer: {question}", "{answer}"),
        T("Read and reason.\n{context}\n{question}", "{answer}"),
        T("What is the answer to \"{question}\" according to this text?\n{context}",
          "{answer}"),
        T("Text: {context}\nCompute: {question}", "{answer}"),
        I("Passage: {context}\nAnswer: {answer}\nWrite a question that requires reasoning "
          "over the passage to reach this answer.", "{question}"),
    ),
    more_inversions=(
        I("Write a question about this passage that asks for a count or a sum.\n\n{context}\n\nIts answer: {answer}", "{question}"),
    ),
)

HELLASWAG = dict(  # HellaSwag: pick the ending that continues a scene
    opt=(
        T("{question}\n\nWhat happens next?{options}", "{answer}"),
        T("Complete the description with the most likely continuation.\n{question}"
          "{options}", "{answer}"),
        T("{question}...\nHow does this most plausibly continue?{options}", "{answer}"),
        T("Choose the sentence ending that makes sense.\n{question}{options}", "{answer}"),
        T("Commonsense continuation: {question}{options}", "{answer}"),
        T("Here is the start of an activity description: \"{question}\" Which option "
          "follows it?{options}", "{answer}"),
        T("Finish the scene.\n{question}{options}", "{answer}"),
        I("Write the beginning of a description of an everyday activity that continues "
          "with: \"{answer}\"", "{question}"),
    ),
    noopt=(
        T("{question}\nWhat comes next in this scene?", "{answer}"),
        T("Continue this description in the most natural way.\n{question}", "{answer}"),
        T("What is a sensible next step? {question}", "{answer}"),
        T("{question}\nWrite how it continues.", "{answer}"),
        T("Complete the sentence: {question}", "{answer}"),
        T("Describe what most likely happens after this: {question}", "{answer}"),
        T("Activity: {question}\nNext:", "{answer}"),
        I("Ending: {answer}\nWrite the context this ending most plausibly follows.",
          "{question}"),
    ),
)

MATH = dict(  # DeepMind mathematics: solve a linear equation in one variable
    opt=(
        T("Equation problem. {question}", "{answer}"),
        T("Solve this algebra problem: {question}", "{answer}"),
        T("Math problem: {question}\nSolution:", "{answer}"),
        T("Find the value of the unknown. {question}", "{answer}"),
        T("{question}\nGive just the number.", "{answer}"),
        T("What is the solution of this linear equation?\n{question}", "{answer}"),
        T("Work out the answer: {question}", "{answer}"),
        I("Write a linear equation problem whose solution is {answer}.", "{question}"),
    ),
    noopt=(
        T("Solve {question}", "{answer}"),
        T("{question}\nAnswer:", "{answer}"),
        T("Algebra: {question}", "{answer}"),
        T("Compute the value asked for.\n{question}", "{answer}"),
        T("Maths question: {question}\nAnswer:", "{answer}"),
        T("Here is an equation to solve. {question}", "{answer}"),
        T("{question} What do you get?", "{answer}"),
        I("The answer is {answer}. Make up an equation in one variable with this "
          "solution.", "{question}"),
    ),
)

MULTIRC = dict(  # MultiRC: is a proposed answer to a question about a paragraph correct
    opt=(
        T("{context}\n\n{question}\nIs the proposed answer right?", "{answer}"),
        T("Read the paragraph and judge the proposed answer.\n\nParagraph: {context}\n\n"
          "{question}", "{answer}"),
        T("{context}\n\nSomeone answered a question about this paragraph. {question} "
          "Answer yes or no.", "{answer}"),
        T("Multi-sentence reading comprehension.\n{context}\n{question}", "{answer}"),
        T("Based on the text below, decide whether the answer given is right.\n\n"
          "{context}\n\n{question}", "{answer}"),
        T("Text: {context}\nCheck this: {question}", "{answer}"),
        T("{question}\nUse this paragraph to decide:\n{context}", "{answer}"),
        I("{context}\n\nWrite a question about this paragraph with a proposed answer, such "
          "that whether the answer is correct is: {answer}.", "{question}"),
    ),
    noopt=(
        T("{context}\n\n{question}\nAnswer yes or no.", "{answer}"),
        T("Paragraph:\n{context}\n\nQuestion and proposed answer:\n{question}", "{answer}"),
        T("Read the text, then say whether the answer offered is correct.\n{context}\n"
          "{question}", "{answer}"),
        T("{context}\nGiven the paragraph, {question}", "{answer}"),
        T("Answer-checking task. Passage: {context} {question}", "{answer}"),
        T("Is the proposed answer supported by the paragraph?\n{context}\n{question}",
          "{answer}"),
        T("Here is some text: {context}\n\n{question} Yes or no?", "{answer}"),
        I("Paragraph: {context}\nWrite a question with a candidate answer; the candidate "
          "is correct: {answer}.", "{question}"),
    ),
)

NATURAL_QUESTIONS = dict(  # Natural Questions (open): real search-engine questions
    opt=(
        T("Search query: {question}\nAnswer:", "{answer}"),
        T("Answer this question someone typed into a search engine: {question}",
          "{answer}"),
        T("Web question: {question}\nShort answer:", "{answer}"),
        T("{question}\nGive a short factual answer.", "{answer}"),
        T("Please answer the following general-knowledge question.\n{question}",
          "{answer}"),
        T("Someone searched for \"{question}\" What is the answer?", "{answer}"),
        T("Answer from what you know, without any document: {question}", "{answer}"),
        I("Write a question a person might search for whose answer is \"{answer}\".",
          "{question}"),
    ),
    noopt=(
        T("Question from a web search: {question}\nAnswer:", "{answer}"),
        T("What is the answer to this? {question}", "{answer}"),
        T("{question} Answer briefly.", "{answer}"),
        T("Open-domain question: {question}", "{answer}"),
        T("Reply with a few words: {question}", "{answer}"),
        T("I looked this up online: {question} What did I find?", "{answer}"),
        T("Answer the search query: {question}", "{answer}"),
        I("Answer: {answer}\nWhat search query might have this as its answer?",
          "{question}"),
    ),
)

QUAC = dict(  # QuAC: a question about a Wikipedia section, a span or CANNOTANSWER
    opt=(
        T("{context}\n\n{question} (quote the text, or write CANNOTANSWER if it does not "
          "say)", "{answer}"),
        T("Read the section and answer with a passage from it.\n\n{context}\n\nQuestion: "
          "{question}", "{answer}"),
        T("Section text: {context}\nQ: {question}\nA:", "{answer}"),
        T("{context}\n\nA student asks: {question} Answer by copying the relevant part.",
          "{answer}"),
        T("Answer from this Wikipedia section: {question}\n\n{context}", "{answer}"),
        T("Background: {context}\n\n{question}", "{answer}"),
        T("Information-seeking question about the text below: {question}\n{context}",
          "{answer}"),
        I("{context}\n\nWrite a question a curious reader might ask about this section "
          "whose answer is: {answer}", "{question}"),
    ),
    noopt=(
        T("{context}\n\nReader's question: {question}", "{answer}"),
        T("Use the excerpt to answer.\n{context}\nQuestion: {question}\nAnswer:",
          "{answer}"),
        T("{context}\nWhat does the text say about this: {question}", "{answer}"),
        T("Excerpt: {context}\n{question} Reply with words from the excerpt.", "{answer}"),
        T("Answer the question using the passage (CANNOTANSWER if it is not there).\n"
          "{context}\n{question}", "{answer}"),
        T("Here is a Wikipedia section.\n{context}\n\nQuestion: {question}", "{answer}"),
        T("{question}\nLook for the answer in:\n{context}", "{answer}"),
        I("Section: {context}\nAnswer span: {answer}\nWhat question was this the answer "
          "to?", "{question}"),
    ),
)

RECORD = dict(  # ReCoRD: fill @placeholder in a query with an entity from the article
    opt=(
        T("{context}\n\n{question}\n\nWhat entity does @placeholder stand for?",
          "{answer}"),
        T("Read the news article and fill in the blank.\n\n{context}\n\nSentence: "
          "{question}", "{answer}"),
        T("Article: {context}\nQuery: {question}\nWhich entity from the article goes in "
          "place of @placeholder?", "{answer}"),
        T("{context}\n\nComplete the sentence with a name from the text: {question}",
          "{answer}"),
        T("Cloze-style reading comprehension.\n{context}\n{question}", "{answer}"),
        T("Here is a story:\n{context}\n\nReplace @placeholder in \"{question}\" with the "
          "right entity.", "{answer}"),
        T("{question}\nFill in @placeholder using the passage below.\n{context}",
          "{answer}"),
        I("{context}\n\nWrite a follow-up sentence about this article in which "
          "@placeholder marks \"{answer}\".", "{question}"),
    ),
    noopt=(
        T("{context}\n\nQuery: {question}", "{answer}"),
        T("Passage: {context}\nFill the blank: {question}", "{answer}"),
        T("{context}\n@placeholder in the next sentence is which entity?\n{question}",
          "{answer}"),
        T("Read this: {context}\n\nWho or what is @placeholder? {question}", "{answer}"),
        T("Article:\n{context}\n\nSentence with a gap:\n{question}\nAnswer:", "{answer}"),
        T("Complete using the article. {question}\n{context}", "{answer}"),
        T("News text: {context}\nWhich entity completes \"{question}\"?", "{answer}"),
        I("Article: {context}\nWrite a sentence with @placeholder where the answer is "
          "{answer}.", "{question}"),
    ),
)

STORY_CLOZE = dict(  # Story Cloze: the right ending of a four-sentence story
    opt=(
        T("{question}\n\nHow should this story end?{options}", "{answer}"),
        T("Choose the best ending for the story.\n{question}{options}", "{answer}"),
        T("Story: {question}\nWhich ending fits?{options}", "{answer}"),
        T("{question}\nWhat is the most fitting last sentence?{options}", "{answer}"),
        T("Read the four sentences and pick the fifth.\n{question}{options}", "{answer}"),
        T("Here is an unfinished short story: {question} Finish it with one of the "
          "options.{options}", "{answer}"),
        T("Story completion.\n{question}{options}", "{answer}"),
        I("Write the first four sentences of a short story that ends with: \"{answer}\"",
          "{question}"),
    ),
    noopt=(
        T("{question}\n\nWrite the last sentence of this story.", "{answer}"),
        T("Continue the story with one sentence that ends it.\n{question}", "{answer}"),
        T("Story so far: {question}\nEnding:", "{answer}"),
        T("{question}\nWhat happens at the end?", "{answer}"),
        T("Finish this short story: {question}", "{answer}"),
        T("Give a sensible ending to the story below.\n{question}", "{answer}"),
        T("Here are four sentences of a story. {question} The fifth sentence is:",
          "{answer}"),
        I("Last sentence: {answer}\nWrite the four sentences of the story that lead up to "
          "it.", "{question}"),
    ),
)

TRIVIA_QA = dict(  # TriviaQA (rc and its questions without a Wikipedia page): trivia
    opt=(
        T("{question} (a trivia question)", "{answer}"),
        T("Trivia question: {question}", "{answer}"),
        T("Answer this quiz question. {question}", "{answer}"),
        T("Trivia Q: {question}\nA:", "{answer}"),
        T("{question}\nWhat is the answer?", "{answer}"),
        T("Pub quiz time! {question}", "{answer}"),
        T("Test your knowledge: {question}", "{answer}"),
        I("Write a trivia question whose answer is {answer}.", "{question}"),
    ),
    noopt=(
        T("Trivia question: {question}\nAnswer:", "{answer}"),
        T("Answer the following trivia question. {question}", "{answer}"),
        T("{question} Answer in a few words.", "{answer}"),
        T("Quiz: {question}", "{answer}"),
        T("Do you know the answer? {question}", "{answer}"),
        T("Here is a question from a trivia game: {question}", "{answer}"),
        T("Give the answer to this general-knowledge question. {question}", "{answer}"),
        I("The answer is {answer}. What might the trivia question be?", "{question}"),
    ),
)

SCIENCE_EXAM = dict(  # UnifiedQA's middle-school science exam questions
    opt=(
        T("Science exam: {question}{options}", "{answer}"),
        T("Middle-school science question: {question}{options}", "{answer}"),
        T("Answer this question from a science test.\n{question}{options}", "{answer}"),
        T("{question}\nWhich choice is scientifically correct?{options}", "{answer}"),
        T("A middle school quiz asks: {question}{options}", "{answer}"),
        T("Use what you learned in science class: {question}{options}", "{answer}"),
        T("Question: {question}\nSelect the right answer.{options}", "{answer}"),
        I("Write a middle-school science exam question whose answer is \"{answer}\".",
          "{question}"),
    ),
    noopt=(
        T("Science exam question: {question}\nAnswer:", "{answer}"),
        T("Answer this science question: {question}", "{answer}"),
        T("Science Q: {question}\nA:", "{answer}"),
        T("{question}\nExplain in a few words.", "{answer}"),
        T("Science test question. {question}", "{answer}"),
        T("A student is asked: {question} What should the student answer?", "{answer}"),
        T("School science: {question}", "{answer}"),
        I("Answer: {answer}\nWrite the science test question it answers.", "{question}"),
    ),
)

WINOGRANDE = dict(  # WinoGrande: which option fills the blank "_"
    opt=(
        T("{question}\n\nWhat goes in the blank?{options}", "{answer}"),
        T("Fill in the blank (_) with the right option.\n{question}{options}", "{answer}"),
        T("Which word makes this sentence sensible? {question}{options}", "{answer}"),
        T("{question}\nThe _ refers to which of these?{options}", "{answer}"),
        T("Commonsense blank filling: {question}{options}", "{answer}"),
        T("Read: \"{question}\" Choose what the underscore stands for.{options}",
          "{answer}"),
        T("Complete the sentence.\n{question}{options}", "{answer}"),
        I("Write a sentence with a blank (_) that only \"{answer}\" fills sensibly.",
          "{question}"),
    ),
    noopt=(
        T("{question}\n\nWhat should replace the _?", "{answer}"),
        T("Fill in the blank: {question}", "{answer}"),
        T("Sentence: {question}\nThe blank is:", "{answer}"),
        T("{question}\nWho or what is the _?", "{answer}"),
        T("Use commonsense to complete: {question}", "{answer}"),
        T("Which person or thing belongs where the underscore is? {question}", "{answer}"),
        T("Resolve the blank in this sentence. {question}", "{answer}"),
        I("Write a sentence with _ that should be filled with {answer}.", "{question}"),
    ),
)

WSC = dict(  # Winograd Schema Challenge: does a pronoun refer to a given noun phrase
    opt=(
        T("{question}\nDecide using the meaning of the whole passage.{options}", "{answer}"),
        T("Winograd schema.\n{question}{options}", "{answer}"),
        T("Coreference check: {question}{options}", "{answer}"),
        T("Read the passage and decide the pronoun's referent.\n{question}{options}",
          "{answer}"),
        T("{question}\nThink about who would do what in this situation.{options}",
          "{answer}"),
        T("Pronoun puzzle: {question}{options}", "{answer}"),
        T("Decide with commonsense. {question}{options}", "{answer}"),
        I("Write a short passage with a pronoun, then ask whether it refers to a given "
          "noun; the answer should be {answer}.", "{question}"),
    ),
    noopt=(
        T("{question}\nAnswer from who would plausibly do what.", "{answer}"),
        T("Answer yes or no.\n{question}", "{answer}"),
        T("{question}\nYes or no?", "{answer}"),
        T("Resolve the pronoun in this text. {question}", "{answer}"),
        T("Winograd question: {question}", "{answer}"),
        T("Use world knowledge to answer: {question}", "{answer}"),
        T("Here is a tricky sentence. {question}", "{answer}"),
        I("Write a passage and a question about one of its pronouns; the right answer is "
          "{answer}.", "{question}"),
    ),
)
