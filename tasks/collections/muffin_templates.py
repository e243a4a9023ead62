"""Dataset templates of Muffin tasks that state their task, in our own words.

FLAN writes ten templates per dataset, rendered by both the formats with and without options
(the latter with the options removed). Here every one of the 80 Muffin datasets has a
template group: `opt` templates (`{options}` marks the options block) and `noopt` ones (they
name the answer space in words where the task has one), each ending with one input
inversion, plus more inversions (`more_inversions`) or reverse-direction templates
(`reverse`, translation) where FLAN has them. `templates_of(dataset)` picks the dataset's ten:
task templates, then its reverse ones, then `INVERSIONS[dataset]` inversions. This module holds the classification, inference,
data-to-text, summary and reading groups; `muffin_templates_qa.py` the other question
answering and multiple-choice ones; `muffin_templates_text.py` the text-writing ones
(emails, debates, translation, text repair, dialog, code). `DATASETS` maps each dataset
to its group. A group is shared only by datasets that are the same task (`SAME_TASK`).
Fields are those of the dataset's template family (families.FIELDS).
"""
from __future__ import annotations

from flan_jax.tasks.collections.families import I
from flan_jax.tasks.collections.families import T
from flan_jax.tasks.collections import muffin_templates_qa as qa
from flan_jax.tasks.collections import muffin_templates_text as text

_THREE_WAY = "Answer yes, no, or it is not possible to tell."

NLI3 = dict(  # ANLI: adversarial three-way entailment
    opt=(
        T("Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the "
          "hypothesis?{options}", "{answer}"),
        T("{premise}\n\nBased on the passage above, is it true that \"{hypothesis}\"?{options}",
          "{answer}"),
        T("Read this: {premise}\nCan we conclude the following?\n{hypothesis}{options}",
          "{answer}"),
        T("If \"{premise}\", does it follow that \"{hypothesis}\"?{options}", "{answer}"),
        T("Decide whether the second sentence must be true, might be true, or must be false "
          "given the first.\nFirst: {premise}\nSecond: {hypothesis}{options}", "{answer}"),
        T("{premise}\nGiven this, is \"{hypothesis}\" entailed?{options}", "{answer}"),
        T("Here is a premise and a claim.\n{premise}\nClaim: {hypothesis}\nIs the claim "
          "supported?{options}", "{answer}"),
        I("Write a hypothesis for this premise whose relation to it is \"{answer}\" (yes: "
          "entailed, no: contradicted).\nPremise: {premise}", "{hypothesis}"),
    ),
    noopt=(
        T("Premise: {premise}\nHypothesis: {hypothesis}\nIs the hypothesis entailed by the "
          "premise? " + _THREE_WAY, "{answer}"),
        T("{premise}\n\nDoes this mean that \"{hypothesis}\"? " + _THREE_WAY, "{answer}"),
        T("Suppose {premise} Can we infer that {hypothesis}?", "{answer}"),
        T("Text: {premise}\nStatement: {hypothesis}\nIs the statement true given the text?",
          "{answer}"),
        T("{premise}\nFrom that, can one tell whether \"{hypothesis}\" holds?", "{answer}"),
        T("Natural language inference. Premise: {premise} Hypothesis: {hypothesis} "
          "Entailed?", "{answer}"),
        T("Given the sentence \"{premise}\", is the sentence \"{hypothesis}\" true? "
          + _THREE_WAY, "{answer}"),
        I("Premise: {premise}\nWrite a hypothesis for which \"is it entailed?\" gets the "
          "answer {answer}.", "{hypothesis}"),
    ),
)

NLI2 = dict(  # RTE: two-way entailment of a sentence by a text
    opt=(
        T("{premise}\n\nDoes the text above entail \"{hypothesis}\"?{options}", "{answer}"),
        T("Text: {premise}\nHypothesis: {hypothesis}\nIs the hypothesis entailed?{options}",
          "{answer}"),
        T("Read the passage and decide if the sentence after it is true.\n{premise}\n"
          "Sentence: {hypothesis}{options}", "{answer}"),
        T("Can we say \"{hypothesis}\" if we know that {premise}?{options}", "{answer}"),
        T("{premise}\nQuestion: does this imply that {hypothesis}?{options}", "{answer}"),
        T("Textual entailment: does \"{premise}\" entail \"{hypothesis}\"?{options}",
          "{answer}"),
        T("Given: {premise}\nDoes it follow that {hypothesis}?{options}", "{answer}"),
        I("Passage: {premise}\nWrite a sentence for which \"does the passage entail it?\" "
          "has the answer {answer}.", "{hypothesis}"),
    ),
    noopt=(
        T("{premise}\n\nIs \"{hypothesis}\" true based on this text? Answer yes or no.",
          "{answer}"),
        T("Passage: {premise}\nClaim: {hypothesis}\nDoes the passage entail the claim?",
          "{answer}"),
        T("Does the sentence \"{premise}\" entail \"{hypothesis}\"? Yes or no?", "{answer}"),
        T("{premise} Based on that, is it the case that {hypothesis}?", "{answer}"),
        T("Decide if the hypothesis follows from the text (yes or no).\nText: {premise}\n"
          "Hypothesis: {hypothesis}", "{answer}"),
        T("Entailment check.\n{premise}\n=> {hypothesis}?", "{answer}"),
        T("Here is a text: {premise}\nIs it right to conclude that {hypothesis}?", "{answer}"),
        I("Text: {premise}\nWrite a claim; whether the text entails it: {answer}.",
          "{hypothesis}"),
    ),
)

QNLI = dict(  # question + sentence: does the sentence answer it
    opt=(
        T("Does the sentence \"{hypothesis}\" answer the question \"{premise}\"?{options}",
          "{answer}"),
        T("Question: {premise}\nSentence: {hypothesis}\nDoes the sentence contain the "
          "answer?{options}", "{answer}"),
        T("{premise}\n\nIs the answer to this question in the following sentence?\n"
          "{hypothesis}{options}", "{answer}"),
        T("Can the question \"{premise}\" be answered from \"{hypothesis}\"?{options}",
          "{answer}"),
        T("Here is a question and a candidate answer sentence.\nQ: {premise}\nS: "
          "{hypothesis}\nIs S a good answer?{options}", "{answer}"),
        T("Will reading \"{hypothesis}\" tell me the answer to {premise}{options}", "{answer}"),
        T("{hypothesis}\nDoes that sentence answer: {premise}{options}", "{answer}"),
        I("Sentence: {hypothesis}\nWrite a question. Does the sentence answer it? {answer}.",
          "{premise}"),
    ),
    noopt=(
        T("Question: {premise}\nSentence: {hypothesis}\nDoes the sentence answer the "
          "question? Yes or no?", "{answer}"),
        T("Is \"{hypothesis}\" an answer to \"{premise}\"?", "{answer}"),
        T("{premise}\nDoes this sentence answer it? {hypothesis}", "{answer}"),
        T("Answer-sentence check: the question is {premise} and the sentence is {hypothesis} "
          "Does it answer it?", "{answer}"),
        T("Would \"{hypothesis}\" be a correct reply to \"{premise}\"? Yes or no.",
          "{answer}"),
        T("Q: {premise}\nCandidate: {hypothesis}\nDoes the candidate contain the answer?",
          "{answer}"),
        T("Does the following sentence hold the answer to the question \"{premise}\"?\n"
          "{hypothesis}", "{answer}"),
        I("Write a question such that the answer to \"does '{hypothesis}' answer it?\" is "
          "{answer}.", "{premise}"),
    ),
)

PARAPHRASE = dict(  # MRPC: do two news sentences say the same thing
    opt=(
        T("Do these two sentences mean the same thing?\n{premise}\n{hypothesis}{options}",
          "{answer}"),
        T("Sentence 1: {premise}\nSentence 2: {hypothesis}\nAre they paraphrases of each "
          "other?{options}", "{answer}"),
        T("\"{premise}\" and \"{hypothesis}\": same meaning?{options}", "{answer}"),
        T("Is the second text a rewording of the first?\nFirst: {premise}\nSecond: "
          "{hypothesis}{options}", "{answer}"),
        T("{premise}\n{hypothesis}\nWould you say these express the same idea?{options}",
          "{answer}"),
        T("Paraphrase detection. A: {premise} B: {hypothesis} Equivalent?{options}",
          "{answer}"),
        T("Could one of these replace the other without changing the meaning?\n{premise}\n"
          "{hypothesis}{options}", "{answer}"),
        I("Write a sentence; asked whether it means the same as \"{premise}\", one would "
          "answer {answer}.", "{hypothesis}"),
    ),
    noopt=(
        T("Do \"{premise}\" and \"{hypothesis}\" have the same meaning? Answer yes or no.",
          "{answer}"),
        T("Text one: {premise}\nText two: {hypothesis}\nAre these paraphrases?", "{answer}"),
        T("Is this pair of sentences equivalent in meaning?\n{premise}\n{hypothesis}",
          "{answer}"),
        T("{premise}\nSay the same thing another way: {hypothesis}\nDid that work?",
          "{answer}"),
        T("Check whether two sentences convey the same information.\n1. {premise}\n2. "
          "{hypothesis}", "{answer}"),
        T("Are \"{premise}\" and \"{hypothesis}\" duplicates?", "{answer}"),
        T("Here are two texts.\n{premise}\n---\n{hypothesis}\nSame meaning?", "{answer}"),
        I("Sentence: {premise}\nWrite another sentence. Same meaning as this one? {answer}.",
          "{hypothesis}"),
    ),
)

_SCALE = "on a scale from 0 (unrelated) to 5 (same meaning)"
STSB = dict(
    opt=(
        T("How similar are these sentences " + _SCALE + "?\n{premise}\n{hypothesis}{options}",
          "{answer}"),
        T("Sentence A: {premise}\nSentence B: {hypothesis}\nRate their similarity "
          + _SCALE + ".{options}", "{answer}"),
        T("Score the semantic similarity of \"{premise}\" and \"{hypothesis}\" " + _SCALE
          + ".{options}", "{answer}"),
        T("{premise}\n{hypothesis}\nFrom 0 to 5, how close in meaning are they?{options}",
          "{answer}"),
        T("Semantic textual similarity (0-5).\nFirst: {premise}\nSecond: {hypothesis}"
          "{options}", "{answer}"),
        T("Give a similarity score " + _SCALE + ": \"{premise}\" vs \"{hypothesis}\""
          "{options}", "{answer}"),
        T("How much do these two sentences overlap in meaning, 0 to 5?\n{premise}\n"
          "{hypothesis}{options}", "{answer}"),
        I("Write a sentence whose similarity to \"{premise}\" is {answer} " + _SCALE + ".",
          "{hypothesis}"),
    ),
    noopt=(
        T("Rate the similarity of the two sentences " + _SCALE + ".\n1: {premise}\n2: "
          "{hypothesis}", "{answer}"),
        T("On a 0-5 scale, how similar is \"{premise}\" to \"{hypothesis}\"?", "{answer}"),
        T("{premise}\n{hypothesis}\nSimilarity score (0 = unrelated, 5 = equivalent):",
          "{answer}"),
        T("Sentence one: {premise}\nSentence two: {hypothesis}\nHow similar are they, from "
          "0 to 5?", "{answer}"),
        T("Give an integer from 0 to 5 for how alike in meaning these are: {premise} || "
          "{hypothesis}", "{answer}"),
        T("Judge semantic similarity " + _SCALE + ".\n{premise}\n{hypothesis}", "{answer}"),
        T("How close are \"{premise}\" and \"{hypothesis}\"? Score 0-5.", "{answer}"),
        I("Sentence: {premise}\nWrite another sentence with similarity {answer} to it "
          + _SCALE + ".", "{hypothesis}"),
    ),
)

WIC = dict(  # hypothesis holds the second sentence and the word in question
    opt=(
        T("First sentence: {premise}\nSecond sentence: {hypothesis}{options}", "{answer}"),
        T("Word sense check.\n{premise}\n{hypothesis}{options}", "{answer}"),
        T("Compare how the word is used in these two sentences.\nA: {premise}\nB: "
          "{hypothesis}{options}", "{answer}"),
        T("{premise}\n{hypothesis}\nAnswer about the word's meaning in both.{options}",
          "{answer}"),
        T("Sentence 1: {premise}\nSentence 2: {hypothesis}\nSame meaning of the word?"
          "{options}", "{answer}"),
        T("Does the word keep its sense across the sentences?\n{premise}\n{hypothesis}"
          "{options}", "{answer}"),
        T("Lexical semantics: {premise} / {hypothesis}{options}", "{answer}"),
    ),
    noopt=(
        T("{premise}\n{hypothesis}\nAnswer yes or no.", "{answer}"),
        T("Is the word used in the same sense in both sentences?\n1. {premise}\n2. "
          "{hypothesis}", "{answer}"),
        T("Here are two uses of a word.\n{premise}\n{hypothesis}", "{answer}"),
        T("Sentence A: {premise}\nSentence B: {hypothesis}\nSame sense, yes or no?",
          "{answer}"),
        T("Word in context: \"{premise}\" and \"{hypothesis}\"", "{answer}"),
        T("Decide if the word means the same thing.\nFirst: {premise}\nSecond: {hypothesis}",
          "{answer}"),
        T("{premise}\nAnd: {hypothesis}", "{answer}"),
    ),
)

COMMON_GEN = dict(
    opt=(
        T("Write a sentence that uses all of these words: {text}", "{answer}"),
        T("Concepts: {text}\nWrite a sentence about everyday life that includes each "
          "concept.", "{answer}"),
        T("Make a sentence with these words: {text}", "{answer}"),
        T("Combine the words {text} into one natural sentence.", "{answer}"),
        T("Here are some keywords: {text}. Write a sentence describing a scene with them.",
          "{answer}"),
        T("Generate a sentence containing the following concepts.\n{text}", "{answer}"),
        T("Keywords: {text}\nSentence:", "{answer}"),
        I("Which key concepts does this sentence contain?\n{answer}", "{text}"),
    ),
    noopt=(
        T("Use every word in this list in one sentence: {text}", "{answer}"),
        T("{text}\n\nWrite a sentence that includes all of the words above.", "{answer}"),
        T("Create a sentence from the concepts {text}.", "{answer}"),
        T("Write something a person might say that mentions {text}.", "{answer}"),
        T("Given the words {text}, describe a plausible scene in one sentence.", "{answer}"),
        T("Constrained generation: include {text}", "{answer}"),
        T("Words to use: {text}\nYour sentence:", "{answer}"),
        I("Sentence: {answer}\nList the main concepts in it, separated by commas.", "{text}"),
    ),
    more_inversions=(
        I("Sentence: {answer}\n\nWhich words in it carry the most meaning?", "{text}"),
        I("Pick out the important words of this sentence.\n{answer}", "{text}"),
    ),
)

TRIPLES = dict(  # DART, WebNLG: subject | relation | object triples -> text
    opt=(
        T("Write a sentence that states these facts: {text}", "{answer}"),
        T("Data: {text}\nDescribe this data in a sentence.", "{answer}"),
        T("Turn the following subject | relation | object triples into fluent text.\n{text}",
          "{answer}"),
        T("Express the information in these triples as a sentence: {text}", "{answer}"),
        T("Facts: {text}\nWrite them as one or two sentences.", "{answer}"),
        T("Verbalize this knowledge graph fragment: {text}", "{answer}"),
        T("{text}\n\nWhat is a sentence that describes this data?", "{answer}"),
        I("Sentence: {answer}\nExtract its facts as subject | relation | object triples.",
          "{text}"),
    ),
    noopt=(
        T("Generate a sentence about this data: {text}", "{answer}"),
        T("Triples: {text}\nText:", "{answer}"),
        T("Write a short description that covers every triple: {text}", "{answer}"),
        T("Data-to-text: {text}", "{answer}"),
        T("Here is structured data: {text}. Write it out in plain English.", "{answer}"),
        T("Put these facts into words.\n{text}", "{answer}"),
        T("Describe, in a sentence, what the following data says: {text}", "{answer}"),
        I("Convert this sentence into data triples (subject | relation | object): {answer}",
          "{text}"),
    ),
)

E2E = dict(  # restaurant meaning representations -> description
    opt=(
        T("Write a restaurant description from these attributes: {text}", "{answer}"),
        T("Attributes: {text}\nDescribe the restaurant in a sentence.", "{answer}"),
        T("Here is data about a restaurant: {text}. Write a sentence about it.", "{answer}"),
        T("Turn this meaning representation into a sentence: {text}", "{answer}"),
        T("{text}\n\nWrite a short review-style description of this place.", "{answer}"),
        T("Generate a sentence that mentions every attribute of the restaurant: {text}",
          "{answer}"),
        T("Restaurant data: {text}\nDescription:", "{answer}"),
        I("Sentence: {answer}\nList the restaurant's attributes as name[value] pairs.",
          "{text}"),
    ),
    noopt=(
        T("Describe the restaurant with these properties: {text}", "{answer}"),
        T("Meaning representation: {text}\nSentence:", "{answer}"),
        T("Write a sentence for a restaurant guide using this data: {text}", "{answer}"),
        T("Produce a natural description of: {text}", "{answer}"),
        T("Using the facts {text}, tell me about this restaurant.", "{answer}"),
        T("Restaurant facts: {text}\nWrite them as text.", "{answer}"),
        T("Verbalize this restaurant record: {text}", "{answer}"),
        I("What attributes (name[value]) does this description give?\n{answer}", "{text}"),
    ),
)

SENTIMENT = dict(  # IMDB: a film review, positive or negative
    opt=(
        T("{text}\n\nIs the sentiment of this review positive or negative?{options}",
          "{answer}"),
        T("What is the sentiment of the following text?\n{text}{options}", "{answer}"),
        T("Review: {text}\nDid the writer like it?{options}", "{answer}"),
        T("Classify the sentiment: \"{text}\"{options}", "{answer}"),
        T("How does the author feel, judging from this?\n{text}{options}", "{answer}"),
        T("{text}\nWould you call that a positive or a negative opinion?{options}", "{answer}"),
        T("Sentiment analysis.\nText: {text}{options}", "{answer}"),
        I("Write a short review with a {answer} sentiment.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nIs this positive or negative?", "{answer}"),
        T("Tell me whether this text is positive or negative: {text}", "{answer}"),
        T("Text: {text}\nSentiment (positive or negative):", "{answer}"),
        T("Read the review and say if it is favourable.\n{text}", "{answer}"),
        T("What attitude does this express, positive or negative? {text}", "{answer}"),
        T("{text}\nOverall tone of the writer?", "{answer}"),
        T("Decide the polarity of this opinion: {text}", "{answer}"),
        I("Write something a person might post that sounds {answer}.", "{text}"),
    ),
    more_inversions=(
        I("Write a {answer} comment about a product or a film.", "{text}"),
        I("Give an example of a {answer} review.", "{text}"),
    ),
)

TOPIC = dict(  # AG News: world, sports, business, science/tech
    opt=(
        T("{text}\n\nWhich section of a newspaper would this article go in?{options}",
          "{answer}"),
        T("What is this news article about?\n{text}{options}", "{answer}"),
        T("Choose the topic of the article.\n{text}{options}", "{answer}"),
        T("Article: {text}\nTopic:{options}", "{answer}"),
        T("Is this story about world news, sports, business or science and technology?\n"
          "{text}{options}", "{answer}"),
        T("Classify this news snippet by subject: {text}{options}", "{answer}"),
        T("{text}\nWhat category does this news belong to?{options}", "{answer}"),
        I("Write a short news item about {answer}.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nWhat is the topic of this news article?", "{answer}"),
        T("Name the subject area of this story: {text}", "{answer}"),
        T("News: {text}\nSection:", "{answer}"),
        T("Which kind of news is this (world, sports, business, science/tech)?\n{text}",
          "{answer}"),
        T("Tell me what this article covers.\n{text}", "{answer}"),
        T("Topic classification: {text}", "{answer}"),
        T("{text}\nThis article is about", "{answer}"),
        I("Write the opening of a {answer} news story.", "{text}"),
    ),
)

ACCEPTABILITY = dict(  # CoLA
    opt=(
        T("Is this sentence grammatically acceptable?\n{text}{options}", "{answer}"),
        T("\"{text}\"\nWould a linguist rate this sentence as acceptable English?{options}",
          "{answer}"),
        T("Sentence: {text}\nIs it well formed?{options}", "{answer}"),
        T("Check the grammar of this sentence: {text}{options}", "{answer}"),
        T("{text}\nDoes this sentence follow the rules of English grammar?{options}",
          "{answer}"),
        T("Grammatical acceptability judgment.\n{text}{options}", "{answer}"),
        T("Could a native speaker say \"{text}\"?{options}", "{answer}"),
        I("Write a sentence whose grammatical acceptability is: {answer}.", "{text}"),
    ),
    noopt=(
        T("Is \"{text}\" a grammatical sentence?", "{answer}"),
        T("{text}\n\nIs the sentence above acceptable English?", "{answer}"),
        T("Judge the grammaticality of: {text}", "{answer}"),
        T("Sentence: {text}\nAcceptable?", "{answer}"),
        T("Is this good English? {text}", "{answer}"),
        T("Would an English teacher accept this sentence?\n{text}", "{answer}"),
        T("Grammar check: {text}", "{answer}"),
        I("Give an English sentence; is it acceptable? {answer}.", "{text}"),
    ),
)

QUESTION_TYPE = dict(  # TREC: what kind of answer a question asks for
    opt=(
        T("What type of thing is this question asking about?\n{text}{options}", "{answer}"),
        T("Question: {text}\nWhat kind of answer does it expect?{options}", "{answer}"),
        T("Classify the question by its expected answer type: {text}{options}", "{answer}"),
        T("\"{text}\"\nIs the answer a person, a place, a number, an entity, a "
          "description or an abbreviation?{options}", "{answer}"),
        T("{text}\nWhich answer category fits this question?{options}", "{answer}"),
        T("Question classification.\n{text}{options}", "{answer}"),
        T("To answer \"{text}\", what kind of information would you give?{options}",
          "{answer}"),
        I("Write a question whose answer is a(n) {answer}.", "{text}"),
    ),
    noopt=(
        T("What is the answer type of this question? {text}", "{answer}"),
        T("{text}\n\nWhat sort of answer does this question need?", "{answer}"),
        T("Question: {text}\nAnswer type:", "{answer}"),
        T("Is this question about a person, location, number, entity, description or "
          "abbreviation? {text}", "{answer}"),
        T("Tell me what the following question asks for: {text}", "{answer}"),
        T("TREC question type of \"{text}\"?", "{answer}"),
        T("Which category of answer would satisfy this question?\n{text}", "{answer}"),
        I("Ask a question that expects a(n) {answer} as its answer.", "{text}"),
    ),
)

NEWS_SUMMARY = dict(  # CNN/DailyMail: an article -> its highlights
    opt=(
        T("{text}\n\nWrite a short summary of this news article.", "{answer}"),
        T("Summarize the main points of the article below.\n\n{text}", "{answer}"),
        T("Article: {text}\n\nSummary:", "{answer}"),
        T("Give the gist of this news story in a few sentences.\n{text}", "{answer}"),
        T("{text}\n\nWhat are the key facts reported here?", "{answer}"),
        T("Here is a news report. Summarize it for a busy reader.\n\n{text}", "{answer}"),
        T("Condense this article into its highlights:\n{text}", "{answer}"),
        I("Write a news article with these highlights: {answer}", "{text}"),
    ),
    noopt=(
        T("Summarize this article:\n\n{text}", "{answer}"),
        T("{text}\n\nTL;DR:", "{answer}"),
        T("News story: {text}\nIn brief:", "{answer}"),
        T("What happened, in short? {text}", "{answer}"),
        T("Write the highlights of this report.\n{text}", "{answer}"),
        T("Read the article and give a brief summary.\n{text}", "{answer}"),
        T("{text}\nSum this up in a few sentences.", "{answer}"),
        I("Summary: {answer}\nWrite the news article it summarizes.", "{text}"),
    ),
    more_inversions=(
        I("Key points:\n{answer}\n\nExpand these points into a full news report.", "{text}"),
    ),
)

HEADLINE = dict(  # Gigaword: the first sentence of a story -> its headline
    opt=(
        T("Write a headline for this sentence from a news story: {text}", "{answer}"),
        T("{text}\n\nWhat would be a good title for this?", "{answer}"),
        T("News lead: {text}\nHeadline:", "{answer}"),
        T("Give this news sentence a short headline.\n{text}", "{answer}"),
        T("Summarize in a few words: {text}", "{answer}"),
        T("Headline generation.\n{text}", "{answer}"),
        T("How would a newspaper title this? {text}", "{answer}"),
        I("Write the opening sentence of a news story titled \"{answer}\".", "{text}"),
    ),
    noopt=(
        T("Headline for: {text}", "{answer}"),
        T("{text}\nShort headline:", "{answer}"),
        T("Write a title of under ten words for this news: {text}", "{answer}"),
        T("What is the headline of a story that begins \"{text}\"?", "{answer}"),
        T("Compress this sentence into a headline.\n{text}", "{answer}"),
        T("Sentence: {text}\nTitle:", "{answer}"),
        T("Turn this into a news headline: {text}", "{answer}"),
        I("Headline: {answer}\nWrite the first sentence of the story.", "{text}"),
    ),
)

DIALOG_SUMMARY = dict(  # SAMSum: chat -> summary
    opt=(
        T("{text}\n\nBriefly summarize this conversation.", "{answer}"),
        T("Summarize the chat below in one or two sentences.\n\n{text}", "{answer}"),
        T("Dialogue:\n{text}\n\nWhat were they talking about?", "{answer}"),
        T("Write a summary of this messenger conversation.\n{text}", "{answer}"),
        T("{text}\n\nGive a short, third-person summary of the dialogue.", "{answer}"),
        T("Here is a chat between friends.\n{text}\nSummary:", "{answer}"),
        T("What is the outcome of this conversation?\n{text}", "{answer}"),
        I("Write a chat conversation that could be summarized as: {answer}", "{text}"),
    ),
    noopt=(
        T("Summarize this dialogue:\n{text}", "{answer}"),
        T("{text}\nTL;DR:", "{answer}"),
        T("Conversation: {text}\nIn short:", "{answer}"),
        T("Sum up what these people agreed or said.\n{text}", "{answer}"),
        T("Read the chat and say what happened in it.\n{text}", "{answer}"),
        T("{text}\n\nWrite the gist of the chat.", "{answer}"),
        T("Dialogue summary task.\n{text}", "{answer}"),
        I("Summary: {answer}\nWrite the conversation.", "{text}"),
    ),
    more_inversions=(
        I("{answer}\n\nWrite the messenger chat this describes.", "{text}"),
    ),
)

SCIENCE_MC = dict(  # ARC (easy, challenge): grade-school science questions
    opt=(
        T("Answer this science question.\n{question}{options}", "{answer}"),
        T("Question: {question}\nWhich answer is scientifically correct?{options}",
          "{answer}"),
        T("{question}\n\nPick the right answer for this science test item.{options}",
          "{answer}"),
        T("A student is asked: {question} What should they answer?{options}", "{answer}"),
        T("Science quiz. {question}{options}", "{answer}"),
        T("Use what you know about science to choose: {question}{options}", "{answer}"),
        T("{question}{options}\nAnswer:", "{answer}"),
        I("Write a grade-school science question whose correct answer is \"{answer}\".",
          "{question}"),
    ),
    noopt=(
        T("Answer the science question: {question}", "{answer}"),
        T("{question}\n\nWhat is the answer, based on basic science?", "{answer}"),
        T("Science question: {question}\nAnswer:", "{answer}"),
        T("Q: {question}\nGive the scientifically correct answer.", "{answer}"),
        T("A quiz asks \"{question}\" What is the right response?", "{answer}"),
        T("Explain in a few words: {question}", "{answer}"),
        T("Test item: {question}", "{answer}"),
        I("The answer is \"{answer}\". Write a science exam question for it.", "{question}"),
    ),
    more_inversions=(
        I("Make up a science test question answered by: {answer}", "{question}"),
    ),
)

CAUSAL = dict(  # COPA: the premise and "what was the cause / what happened as a result"
    opt=(
        T("{question}{options}", "{answer}"),
        T("Pick the more plausible alternative.\n{question}{options}", "{answer}"),
        T("Premise and question: {question}\nWhich choice makes more sense?{options}",
          "{answer}"),
        T("Think about cause and effect. {question}{options}", "{answer}"),
        T("Choose the most likely answer: {question}{options}", "{answer}"),
        T("{question}\nSelect the more reasonable option.{options}", "{answer}"),
        T("Causal reasoning. {question}{options}", "{answer}"),
        I("Write a situation and a cause-or-effect question whose most plausible answer is "
          "\"{answer}\".", "{question}"),
    ),
    noopt=(
        T("{question}", "{answer}"),
        T("Answer with a plausible cause or effect: {question}", "{answer}"),
        T("{question}\nWhat is the most likely answer?", "{answer}"),
        T("Situation and question: {question}", "{answer}"),
        T("Reason about what caused this or what it led to. {question}", "{answer}"),
        T("Commonsense causality: {question}", "{answer}"),
        T("Q: {question}\nA plausible answer:", "{answer}"),
        I("\"{answer}\" is the answer. Write the premise and the question.", "{question}"),
    ),
)

PHYSICAL = dict(  # PIQA: a goal -> the solution that works
    opt=(
        T("Goal: {question}\nWhich solution achieves it?{options}", "{answer}"),
        T("How would you do this: {question}{options}", "{answer}"),
        T("Pick the method that actually works.\n{question}{options}", "{answer}"),
        T("{question}\nChoose the more sensible way to do it.{options}", "{answer}"),
        T("Physical commonsense. To {question}{options}", "{answer}"),
        T("Which of these is a good way to accomplish the goal \"{question}\"?{options}",
          "{answer}"),
        T("Task: {question}\nBest approach:{options}", "{answer}"),
        I("Write a goal that this method accomplishes: {answer}", "{question}"),
    ),
    noopt=(
        T("How do you {question}", "{answer}"),
        T("Goal: {question}\nDescribe a way to do it.", "{answer}"),
        T("Explain how to achieve this: {question}", "{answer}"),
        T("{question}\nWhat is a practical solution?", "{answer}"),
        T("Give a method for the following: {question}", "{answer}"),
        T("Everyday physics question: {question}", "{answer}"),
        T("What should I do? {question}", "{answer}"),
        I("Here is a method: {answer}\nWhat goal does it serve?", "{question}"),
    ),
)

YES_NO_QA = dict(  # BoolQ: passage + yes/no question
    opt=(
        T("{context}\n\nBased on the passage, {question}", "{answer}"),
        T("Passage: {context}\nQuestion: {question}\nAnswer yes or no.", "{answer}"),
        T("Read the text and answer the yes/no question.\n\n{context}\n\n{question}",
          "{answer}"),
        T("{context}\nIs it true that the answer to \"{question}\" is yes?", "{answer}"),
        T("Text: {context}\n{question} (yes or no)", "{answer}"),
        T("Here is an article: {context}\nAccording to it, {question}", "{answer}"),
        T("{question}\nUse this passage to decide: {context}", "{answer}"),
        I("{context}\n\nWrite a yes/no question about this passage whose answer is "
          "{answer}.", "{question}"),
    ),
    noopt=(
        T("{context}\n\n{question}", "{answer}"),
        T("Answer from the passage.\nPassage: {context}\nQuestion: {question}", "{answer}"),
        T("{context}\nQ: {question}\nA:", "{answer}"),
        T("Does the passage say yes or no to this: {question}\n\n{context}", "{answer}"),
        T("Based on \"{context}\", {question}", "{answer}"),
        T("Yes/no question about a text.\nText: {context}\nQuestion: {question}",
          "{answer}"),
        T("Read: {context}\nNow answer: {question}", "{answer}"),
        I("Passage: {context}\nAsk a question about it that is answered \"{answer}\".",
          "{question}"),
    ),
)

EXTRACTIVE = dict(  # SQuAD v1.1: an answer span from the passage
    opt=(
        T("{context}\n\nAnswer with a span from the passage: {question}", "{answer}"),
        T("Passage: {context}\nQuestion: {question}\nCopy the answer from the passage "
          "(or say unanswerable).", "{answer}"),
        T("Read this and answer the question. If it cannot be answered, say so.\n\n"
          "{context}\n\n{question}", "{answer}"),
        T("{question}\n\nFind the answer in this text:\n{context}", "{answer}"),
        T("Context: {context}\nQ: {question}\nA:", "{answer}"),
        T("Extract the answer to \"{question}\" from the paragraph.\n{context}", "{answer}"),
        T("Reading comprehension.\n{context}\nQuestion: {question}\nAnswer:", "{answer}"),
        I("{context}\n\nWrite a question about this paragraph that is answered by "
          "\"{answer}\".", "{question}"),
    ),
    noopt=(
        T("{context}\n\n{question}\nAnswer with words from the text.", "{answer}"),
        T("Answer the question about the article.\nArticle: {context}\nQuestion: "
          "{question}", "{answer}"),
        T("Given the paragraph below, {question}\n\n{context}", "{answer}"),
        T("Text: {context}\nWhat is the answer to: {question}", "{answer}"),
        T("From the passage \"{context}\", answer: {question}", "{answer}"),
        T("{context}\nQuestion: {question}\nShort answer:", "{answer}"),
        T("Wikipedia paragraph: {context}\n{question}", "{answer}"),
        I("Paragraph: {context}\nAnswer: {answer}\nWhat question is this the answer to?",
          "{question}"),
    ),
)

LAST_WORD = dict(  # LAMBADA: predict the final word of a passage
    opt=(
        T("What is the last word of this passage?\n\n{text}", "{answer}"),
        T("{text} ...\n\nWhich word ends the passage?", "{answer}"),
        T("Complete the final word: {text}", "{answer}"),
        T("Predict the next word.\n{text}", "{answer}"),
        T("Read the story and fill in its last word.\n{text} ____", "{answer}"),
        T("Text: {text}\nThe next word is:", "{answer}"),
        T("Finish the passage with one word.\n\n{text}", "{answer}"),
        I("Write a passage that ends with the word \"{answer}\" (leave that word out).",
          "{text}"),
    ),
    noopt=(
        T("{text}", "{answer}"),
        T("Continue with the single most likely word: {text}", "{answer}"),
        T("What word comes next?\n{text}", "{answer}"),
        T("{text}\n\nThe missing final word:", "{answer}"),
        T("Language modeling: give the word that completes this text.\n{text}", "{answer}"),
        T("Guess the final word of this story.\n{text}", "{answer}"),
        T("Fill in the blank at the end: {text} ___", "{answer}"),
        I("The last word is \"{answer}\". Write the passage before it.", "{text}"),
    ),
)

_TELL = "Answer yes, no, or it is impossible to say."

MNLI = dict(  # MultiNLI: premises from ten genres of written and spoken English
    opt=(
        T("{premise}\n\nIf that is true, is this also true? {hypothesis}{options}", "{answer}"),
        T("Statement one: {premise}\nStatement two: {hypothesis}\nDoes the first statement "
          "imply the second?{options}", "{answer}"),
        T("Here is a sentence from a longer text: \"{premise}\"\nWould \"{hypothesis}\" then "
          "be right?{options}", "{answer}"),
        T("Is the claim \"{hypothesis}\" entailed by the following?\n{premise}{options}",
          "{answer}"),
        T("{premise}\nGiven the sentence above, does it hold that {hypothesis}{options}",
          "{answer}"),
        T("Genre-agnostic inference.\nPremise: {premise}\nHypothesis: {hypothesis}{options}",
          "{answer}"),
        I("Premise: {premise}\nWrite a hypothesis whose relation to it is \"{answer}\".",
          "{hypothesis}"),
    ),
    noopt=(
        T("{premise}\nDoes that mean {hypothesis} " + _TELL, "{answer}"),
        T("Premise: \"{premise}\" Hypothesis: \"{hypothesis}\" Entailment, contradiction or "
          "neither (yes / no / it is not possible to tell)?", "{answer}"),
        T("Suppose it is true that {premise} Then is it true that {hypothesis}?", "{answer}"),
        T("Sentence A: {premise}\nSentence B: {hypothesis}\nDoes A support B?", "{answer}"),
        T("Think about this: {premise}\nCould one conclude \"{hypothesis}\"?", "{answer}"),
        T("{premise} Therefore, {hypothesis}? Is this a valid inference?", "{answer}"),
        I("Write a sentence that stands in the relation \"{answer}\" to this one: {premise}",
          "{hypothesis}"),
    ),
)

CB = dict(  # CommitmentBank: does the speaker of a short text commit to an embedded clause
    opt=(
        T("{premise}\n\nDoes the speaker of this text believe that \"{hypothesis}\"?{options}",
          "{answer}"),
        T("Text: {premise}\nIs the author committed to \"{hypothesis}\" being true?{options}",
          "{answer}"),
        T("Read the passage and decide if it implies the clause that follows.\n{premise}\n"
          "Clause: {hypothesis}{options}", "{answer}"),
        T("{premise}\nFrom this, can you tell that {hypothesis}?{options}", "{answer}"),
        T("Here is a piece of conversation or prose: {premise}\nDoes it commit to this: "
          "{hypothesis}{options}", "{answer}"),
        T("Passage:\n{premise}\n\nQuestion: is \"{hypothesis}\" implied?{options}", "{answer}"),
        I("{premise}\n\nWrite a clause that this passage relates to as \"{answer}\".",
          "{hypothesis}"),
    ),
    noopt=(
        T("{premise}\nDoes the writer hold that {hypothesis}? " + _TELL, "{answer}"),
        T("Given the text \"{premise}\", is it the case that \"{hypothesis}\"?", "{answer}"),
        T("Commitment check.\nText: {premise}\nProposition: {hypothesis}", "{answer}"),
        T("{premise}\n\nWould the speaker agree that {hypothesis}?", "{answer}"),
        T("Decide whether the text entails the statement (yes, no, or unclear).\n{premise}\n"
          "Statement: {hypothesis}", "{answer}"),
        T("Based only on this passage: {premise}\nIs it true that {hypothesis}?", "{answer}"),
        I("Text: {premise}\nWrite an embedded statement; the text's commitment to it: {answer}.",
          "{hypothesis}"),
    ),
)

SNLI = dict(  # SNLI: image captions as premises
    opt=(
        T("A photo caption reads: \"{premise}\"\nCan we say that \"{hypothesis}\"?{options}",
          "{answer}"),
        T("Caption: {premise}\nStatement: {hypothesis}\nDoes the caption entail the "
          "statement?{options}", "{answer}"),
        T("{premise}\n\nIf this describes a picture, is the following true of it? "
          "{hypothesis}{options}", "{answer}"),
        T("Picture description: {premise}\nClaim about the picture: {hypothesis}\nIs the claim "
          "right?{options}", "{answer}"),
        T("Given the scene \"{premise}\", is \"{hypothesis}\" accurate?{options}", "{answer}"),
        T("Scene: {premise}\nInference: {hypothesis}\nValid?{options}", "{answer}"),
        I("Scene: {premise}\nDescribe the same scene in a sentence whose relation to it is "
          "\"{answer}\".", "{hypothesis}"),
    ),
    noopt=(
        T("{premise}\nDoes that imply that {hypothesis}? " + _TELL, "{answer}"),
        T("An image shows: {premise}\nIs it true that {hypothesis}?", "{answer}"),
        T("Look at this caption: \"{premise}\" Then judge: \"{hypothesis}\"", "{answer}"),
        T("If \"{premise}\" is what we see, must \"{hypothesis}\" be true?", "{answer}"),
        T("Caption entailment. {premise} => {hypothesis}?", "{answer}"),
        T("Premise (a caption): {premise}\nHypothesis: {hypothesis}\nAnswer:", "{answer}"),
        I("Caption: {premise}\nWrite a second caption that is \"{answer}\" given the first.",
          "{hypothesis}"),
    ),
)

WNLI = dict(  # WNLI: a Winograd sentence and the same sentence with a pronoun resolved
    opt=(
        T("{premise}\n\nWith the pronoun filled in, is this still what it says? "
          "{hypothesis}{options}", "{answer}"),
        T("Sentence 1: {premise}\nSentence 2: {hypothesis}\nDoes the second follow from the "
          "first?{options}", "{answer}"),
        T("Read: \"{premise}\"\nDoes that mean \"{hypothesis}\"?{options}", "{answer}"),
        T("{premise}\nIf a pronoun above is replaced as below, is the result true?\n"
          "{hypothesis}{options}", "{answer}"),
        T("Pronoun resolution as entailment.\nText: {premise}\nReading: {hypothesis}{options}",
          "{answer}"),
        T("Is \"{hypothesis}\" a correct reading of \"{premise}\"?{options}", "{answer}"),
        I("{premise}\n\nRewrite this sentence with one pronoun replaced so that the answer to "
          "\"is it entailed?\" is {answer}.", "{hypothesis}"),
    ),
    noopt=(
        T("{premise}\nDoes this imply that {hypothesis}? Yes or no?", "{answer}"),
        T("Original: {premise}\nResolved: {hypothesis}\nIs the resolution right?", "{answer}"),
        T("Does the sentence \"{premise}\" tell us that {hypothesis}?", "{answer}"),
        T("{premise} -- so, {hypothesis} True or not?", "{answer}"),
        T("Here, who does the pronoun mean? {premise}\nIs it as in: {hypothesis}", "{answer}"),
        T("Check whether the second sentence follows.\n{premise}\n{hypothesis}", "{answer}"),
        I("Sentence: {premise}\nWrite a version of it with a pronoun spelled out; entailed: "
          "{answer}.", "{hypothesis}"),
    ),
)

XSUM = dict(  # XSum: a BBC article -> its one-sentence summary
    opt=(
        T("{text}\n\nSum up this article in one sentence.", "{answer}"),
        T("Write a single-sentence summary of the story below.\n\n{text}", "{answer}"),
        T("Article: {text}\n\nOne-line summary:", "{answer}"),
        T("What is this BBC report about, in one sentence?\n{text}", "{answer}"),
        T("{text}\n\nGive the article's main point in a sentence.", "{answer}"),
        T("Here is a news story. Write the sentence that would introduce it.\n\n{text}",
          "{answer}"),
        I("Write a news article that could be summarised as: {answer}", "{text}"),
    ),
    noopt=(
        T("Summarise in one sentence:\n\n{text}", "{answer}"),
        T("{text}\n\nIn one sentence:", "{answer}"),
        T("Story: {text}\nExtreme summary:", "{answer}"),
        T("Read this and say in a sentence what it reports.\n{text}", "{answer}"),
        T("{text}\nWhat is the single most important fact here?", "{answer}"),
        T("Compress this article to one sentence.\n{text}", "{answer}"),
        I("One-sentence summary: {answer}\nWrite the article.", "{text}"),
    ),
)

NEWSROOM = dict(  # Newsroom: a news article -> its summary from the publisher's metadata
    opt=(
        T("{text}\n\nWrite a short summary for this news article, as a newspaper's web page "
          "would show it.", "{answer}"),
        T("Summarize the following article in a sentence or two.\n\n{text}", "{answer}"),
        T("Article text: {text}\n\nTeaser:", "{answer}"),
        T("What would be a good blurb for this article?\n{text}", "{answer}"),
        T("{text}\n\nWhat is the article's summary?", "{answer}"),
        T("Here is a news article from a publisher's site. Write its summary.\n\n{text}",
          "{answer}"),
        I("Write an article to go with this summary: {answer}", "{text}"),
    ),
    noopt=(
        T("Write a summary of this news piece:\n\n{text}", "{answer}"),
        T("{text}\n\nBlurb:", "{answer}"),
        T("News text: {text}\nShort description:", "{answer}"),
        T("In a couple of sentences, what does this article say?\n{text}", "{answer}"),
        T("{text}\nSummarize for a news feed.", "{answer}"),
        T("Give a brief description of this article.\n{text}", "{answer}"),
        I("Summary: {answer}\nWrite the full news article.", "{text}"),
    ),
    more_inversions=(
        I("A newspaper describes a story as \"{answer}\". Write that story.", "{text}"),
    ),
)

MULTI_NEWS = dict(  # Multi-News: several articles on one event -> one summary
    opt=(
        T("{text}\n\nWrite one summary that covers these news articles.", "{answer}"),
        T("Summarize what these reports say together.\n\n{text}", "{answer}"),
        T("Articles: {text}\n\nCombined summary:", "{answer}"),
        T("Several sources report on the same event:\n{text}\nSummarize the event.",
          "{answer}"),
        T("{text}\n\nWhat do these articles tell us, in a paragraph?", "{answer}"),
        T("Here are news reports from different outlets. Write a single overview.\n\n{text}",
          "{answer}"),
        I("Write several news reports on the event summarised here: {answer}", "{text}"),
    ),
    noopt=(
        T("Multi-document summary:\n\n{text}", "{answer}"),
        T("{text}\n\nOverview:", "{answer}"),
        T("Sources: {text}\nWrite what they agree happened.", "{answer}"),
        T("Merge these reports into one summary.\n{text}", "{answer}"),
        T("{text}\nGive a short account of the event these articles describe.", "{answer}"),
        T("Read the articles and write one paragraph summing them up.\n{text}", "{answer}"),
        I("Summary: {answer}\nWrite the news articles it is drawn from.", "{text}"),
    ),
)

QQP = dict(  # Quora Question Pairs: are two questions asking the same thing
    opt=(
        T("Are these two questions asking the same thing?\n{premise}\n{hypothesis}{options}",
          "{answer}"),
        T("Question 1: {premise}\nQuestion 2: {hypothesis}\nWould one answer serve both?{options}",
          "{answer}"),
        T("On a Q&A site, should \"{hypothesis}\" be merged into \"{premise}\"?{options}",
          "{answer}"),
        T("{premise}\n{hypothesis}\nDuplicate questions?{options}", "{answer}"),
        T("Is \"{premise}\" the same question as \"{hypothesis}\"?{options}", "{answer}"),
        T("Two users asked:\n- {premise}\n- {hypothesis}\nDid they ask the same thing?{options}",
          "{answer}"),
        I("Write a question that is {answer} a duplicate of: {premise}", "{hypothesis}"),
    ),
    noopt=(
        T("Do the questions \"{premise}\" and \"{hypothesis}\" have the same intent? Yes or no.",
          "{answer}"),
        T("First question: {premise}\nSecond question: {hypothesis}\nSame question?", "{answer}"),
        T("Would an answer to \"{premise}\" also answer \"{hypothesis}\"?", "{answer}"),
        T("Duplicate-question check.\n{premise}\n{hypothesis}", "{answer}"),
        T("{premise} / {hypothesis} -- the same question asked twice?", "{answer}"),
        T("Someone asks \"{premise}\" and someone else \"{hypothesis}\". Same thing?", "{answer}"),
        I("Question: {premise}\nWrite another question; a duplicate of it? {answer}.", "{hypothesis}"),
    ),
)

PAWS = dict(  # PAWS: paraphrase pairs with high word overlap
    opt=(
        T("These sentences use nearly the same words. Do they mean the same?\n{premise}\n"
          "{hypothesis}{options}", "{answer}"),
        T("Sentence A: {premise}\nSentence B: {hypothesis}\nDoes swapping words change the "
          "meaning here?{options}", "{answer}"),
        T("\"{premise}\"\n\"{hypothesis}\"\nSame meaning, or does the word order change it?{options}",
          "{answer}"),
        T("Is the second sentence a paraphrase of the first?\n{premise}\n{hypothesis}{options}",
          "{answer}"),
        T("Read both carefully: {premise} | {hypothesis} Equivalent?{options}", "{answer}"),
        T("Word-overlap paraphrase test.\n1: {premise}\n2: {hypothesis}{options}", "{answer}"),
        I("Rearrange the words of \"{premise}\" so that the answer to \"same meaning?\" is {answer}.",
          "{hypothesis}"),
    ),
    noopt=(
        T("Do these mean the same thing? {premise} / {hypothesis}", "{answer}"),
        T("{premise}\n{hypothesis}\nParaphrases, yes or no?", "{answer}"),
        T("Same words, same meaning? First: {premise} Second: {hypothesis}", "{answer}"),
        T("Decide if the two sentences say the same.\n{premise}\n{hypothesis}", "{answer}"),
        T("Does \"{hypothesis}\" restate \"{premise}\"?", "{answer}"),
        T("Compare: \"{premise}\" vs. \"{hypothesis}\". Equivalent meaning?", "{answer}"),
        I("Sentence: {premise}\nScramble some of its words into a new sentence; same meaning: {answer}.",
          "{hypothesis}"),
    ),
)

SST2 = dict(  # SST-2: one sentence from a film review
    opt=(
        T("Film review sentence: \"{text}\"\nIs it positive or negative?{options}", "{answer}"),
        T("{text}\n\nHow does this sentence from a movie review feel?{options}", "{answer}"),
        T("Sentiment of this line about a film: {text}{options}", "{answer}"),
        T("Does the critic like the movie, judging from \"{text}\"?{options}", "{answer}"),
        T("Movie review snippet: {text}\nTone?{options}", "{answer}"),
        T("Classify this review phrase: {text}{options}", "{answer}"),
        I("Write a {answer} sentence from a film review.", "{text}"),
    ),
    noopt=(
        T("Is this movie review sentence positive or negative? {text}", "{answer}"),
        T("\"{text}\" -- did the reviewer enjoy the film?", "{answer}"),
        T("Review line: {text}\nSentiment:", "{answer}"),
        T("{text}\nIs the critic praising or panning?", "{answer}"),
        T("What is the polarity of this film critique? {text}", "{answer}"),
        T("Tell whether the following movie comment is favourable: {text}", "{answer}"),
        I("Give a one-sentence {answer} opinion of a movie.", "{text}"),
    ),
)

YELP = dict(  # Yelp polarity: a business review
    opt=(
        T("Business review: {text}\nDid the customer have a good experience?{options}", "{answer}"),
        T("{text}\n\nIs this review of a restaurant or shop positive or negative?{options}",
          "{answer}"),
        T("What does this Yelp-style review say about the place?\n{text}{options}", "{answer}"),
        T("Customer feedback: \"{text}\"\nSentiment?{options}", "{answer}"),
        T("Would the writer of this review come back?\n{text}{options}", "{answer}"),
        T("Rate the tone of this local-business review.\n{text}{options}", "{answer}"),
        I("Write a {answer} review of a local business.", "{text}"),
    ),
    noopt=(
        T("Is this business review positive or negative?\n{text}", "{answer}"),
        T("{text}\nWas the reviewer pleased with the place?", "{answer}"),
        T("Review: {text}\nOverall sentiment:", "{answer}"),
        T("Judge this customer's opinion: {text}", "{answer}"),
        T("Does the following review recommend the business? {text}", "{answer}"),
        T("Positive or negative experience? {text}", "{answer}"),
        I("Write a customer review of a restaurant that is {answer}.", "{text}"),
    ),
    more_inversions=(
        I("A diner's review was {answer}. Write it.", "{text}"),
    ),
)

SENTIMENT140 = dict(  # Sentiment140: a tweet
    opt=(
        T("Tweet: {text}\nWhat is its sentiment?{options}", "{answer}"),
        T("{text}\n\nIs the person who tweeted this happy or unhappy?{options}", "{answer}"),
        T("Classify the mood of this tweet: \"{text}\"{options}", "{answer}"),
        T("How does this short post sound?\n{text}{options}", "{answer}"),
        T("Social media post: {text}\nFeeling:{options}", "{answer}"),
        T("Read the tweet and pick its sentiment.\n{text}{options}", "{answer}"),
        I("Write a {answer} tweet.", "{text}"),
    ),
    noopt=(
        T("Is this tweet positive or negative? {text}", "{answer}"),
        T("{text}\nHow is the tweeter feeling?", "{answer}"),
        T("Tweet sentiment: {text}", "{answer}"),
        T("What mood does this post express? {text}", "{answer}"),
        T("Decide the sentiment of the following tweet.\n{text}", "{answer}"),
        T("\"{text}\" -- a positive or a negative tweet?", "{answer}"),
        I("Post something on social media that sounds {answer}.", "{text}"),
    ),
    more_inversions=(
        I("Give an example of a {answer} tweet.", "{text}"),
        I("Compose a short {answer} status update.", "{text}"),
    ),
)

OPENBOOKQA = dict(  # OpenBookQA: elementary science, answered with a core fact and common knowledge
    opt=(
        T("Use a basic science fact to answer: {question}{options}", "{answer}"),
        T("Open-book science question: {question}\nWhich choice is right?{options}", "{answer}"),
        T("{question}\n\nThink of an elementary science fact that applies, then choose.{options}",
          "{answer}"),
        T("Q: {question}{options}\nA:", "{answer}"),
        T("Which answer follows from everyday science knowledge? {question}{options}", "{answer}"),
        T("Pick the best completion. {question}{options}", "{answer}"),
        I("Write an elementary science question answered by \"{answer}\".", "{question}"),
    ),
    noopt=(
        T("Answer using a science fact: {question}", "{answer}"),
        T("{question}\nWhat does basic science say?", "{answer}"),
        T("Elementary science: {question}", "{answer}"),
        T("Complete the statement with the right science: {question}", "{answer}"),
        T("Question from a science open-book test: {question}", "{answer}"),
        T("Use what you know about nature to answer this. {question}", "{answer}"),
        I("The answer is {answer}. What open-book science question was asked?", "{question}"),
    ),
    more_inversions=(
        I("Make up a question about the natural world whose answer is {answer}.", "{question}"),
    ),
)

SQUAD_V2 = dict(  # SQuAD v2: a span from the paragraph, or "unanswerable"
    opt=(
        T("{context}\n\nAnswer from the paragraph, or say unanswerable: {question}", "{answer}"),
        T("Paragraph: {context}\nQuestion: {question}\nIf the paragraph does not say, answer "
          "unanswerable.", "{answer}"),
        T("Read this. Some questions about it have no answer in it.\n\n{context}\n\n{question}",
          "{answer}"),
        T("{question}\n\nIs the answer in this text? If so, give it; if not, say unanswerable.\n{context}",
          "{answer}"),
        T("Context: {context}\nQ: {question} (unanswerable if the context lacks it)\nA:", "{answer}"),
        T("Extract the answer to \"{question}\", or reply unanswerable.\n{context}", "{answer}"),
    ),
    noopt=(
        T("{context}\n\n{question}\nAnswer with words from the text, or unanswerable.", "{answer}"),
        T("Article: {context}\nQuestion: {question}\nAnswer (unanswerable if not in the article):",
          "{answer}"),
        T("Can this be answered from the passage? {question}\n{context}", "{answer}"),
        T("Text: {context}\nFind the answer to: {question}", "{answer}"),
        T("From \"{context}\", answer: {question}", "{answer}"),
        T("Wikipedia passage: {context}\n{question}\nShort answer or unanswerable:", "{answer}"),
    ),
)

# catalogue dataset name -> its template sets
DATASETS = {
    "anli_r1": NLI3, "anli_r2": NLI3, "anli_r3": NLI3, "cb": CB, "mnli_matched": MNLI,
    "mnli_mismatched": MNLI, "snli": SNLI, "rte": NLI2, "wnli": WNLI, "qnli": QNLI,
    "glue_mrpc": PARAPHRASE, "glue_qqp": QQP, "paws_wiki": PAWS, "stsb": STSB,
    "wic": WIC, "common_gen": COMMON_GEN, "dart": TRIPLES, "web_nlg_en": TRIPLES,
    "e2e_nlg": E2E, "imdb_reviews": SENTIMENT, "sst2": SST2,
    "yelp_polarity_reviews": YELP, "sentiment140": SENTIMENT140, "ag_news_subset": TOPIC,
    "cola": ACCEPTABILITY, "trec": QUESTION_TYPE, "cnn_dailymail": NEWS_SUMMARY,
    "xsum": XSUM, "newsroom": NEWSROOM, "multi_news": MULTI_NEWS,
    "gigaword": HEADLINE, "samsum": DIALOG_SUMMARY, "arc_easy": SCIENCE_MC,
    "arc_challenge": SCIENCE_MC, "openbookqa": OPENBOOKQA, "copa": CAUSAL, "piqa": PHYSICAL,
    "bool_q": YES_NO_QA, "squad_v1": EXTRACTIVE, "squad_v2": SQUAD_V2, "lambada": LAST_WORD,
    # question answering and multiple choice (muffin_templates_qa.py)
    "coqa": qa.COQA, "cosmos_qa": qa.COSMOS_QA, "definite_pronoun_resolution": qa.PRONOUN,
    "drop": qa.DROP, "hellaswag": qa.HELLASWAG, "math_dataset": qa.MATH,
    "multirc": qa.MULTIRC, "natural_questions": qa.NATURAL_QUESTIONS, "quac": qa.QUAC,
    "record": qa.RECORD, "story_cloze": qa.STORY_CLOZE, "trivia_qa": qa.TRIVIA_QA,
    "trivia_qa_wiki_missing": qa.TRIVIA_QA, "unified_qa_science_inst": qa.SCIENCE_EXAM,
    "winogrande": qa.WINOGRANDE, "wsc": qa.WSC,
    # text writing (muffin_templates_text.py)
    "aeslc": text.EMAIL_SUBJECT, "opinion_abstracts_idebate": text.DEBATE_CLAIM,
    "opinion_abstracts_rotten_tomatoes": text.CRITICS_CONSENSUS,
    "wiki_lingua_english_en": text.HOW_TO_SUMMARY,
    **{d: text.TRANSLATION for d in (
        "para_crawl_enes", "wmt14_enfr", "wmt16_translate_csen", "wmt16_translate_deen",
        "wmt16_translate_fien", "wmt16_translate_roen", "wmt16_translate_ruen",
        "wmt16_translate_tren")},
    "fix_punct": text.PUNCTUATION, "true_case": text.TRUE_CASE,
    "word_segment": text.WORD_SEGMENT,
    "qrecc": text.NEXT_TURN, "task_master": text.NEXT_TURN, "wiki_dialog": text.NEXT_TURN,
    "dmcc_python": text.PYTHON_SOLUTION, "dr_repair_plain_code": text.DR_REPAIR,
    "dr_repair_line_numbers": text.DR_REPAIR, "dr_repair_no_errors": text.DR_REPAIR,
    "dr_repair_error_comments": text.DR_REPAIR_COMMENTS,
}

# The groups several datasets share, and why they are one task. Every other group
# belongs to one dataset (tests/test_flan_fidelity.py checks both).
SAME_TASK = {
    "three-way entailment over adversarial rounds (ANLI r1-r3)": ("anli_r1", "anli_r2", "anli_r3"),
    "MultiNLI, matched and mismatched genres": ("mnli_matched", "mnli_mismatched"),
    "subject | relation | object triples to text": ("dart", "web_nlg_en"),
    "grade-school science multiple choice (ARC easy and challenge)": ("arc_easy", "arc_challenge"),
    "trivia question without a document (one TriviaQA question set)": (
        "trivia_qa", "trivia_qa_wiki_missing"),
    "translate a sentence between the pair in the fields": (
        "para_crawl_enes", "wmt14_enfr", "wmt16_translate_csen", "wmt16_translate_deen",
        "wmt16_translate_fien", "wmt16_translate_roen", "wmt16_translate_ruen",
        "wmt16_translate_tren"),
    "the next turn of a conversation": ("qrecc", "task_master", "wiki_dialog"),
    "fix a C++ compile error (DrRepair without the error comment)": (
        "dr_repair_plain_code", "dr_repair_line_numbers", "dr_repair_no_errors"),
}

# Ten templates per dataset, as FLAN writes them; the "opt" and "noopt" formats render the
# same ten, the "noopt" ones without the options block (FLAN's no-options patterns are its
# patterns with `{options_}` removed), so x-shot rotates over ten in both.
TEMPLATES_PER_DATASET = 10

# Input inversions per dataset: how many of FLAN's ten templates for it (flan/v2's
# flan_templates_branched.py and templates.py) ask for one of the inputs, or for the source
# side of a generation task, instead of the answer. Datasets not listed keep one. Translation
# pairs also translate the other way (`reverse` in their group): three of FLAN's ten.
INVERSIONS = {
    "rte": 1, "wnli": 0, "cb": 1, "anli_r1": 1, "anli_r2": 1, "anli_r3": 1,
    "mnli_matched": 0, "mnli_mismatched": 0, "snli": 1, "qnli": 1, "wic": 0, "wsc": 0,
    "record": 0, "natural_questions": 0, "trivia_qa": 0, "trivia_qa_wiki_missing": 0,
    "math_dataset": 0, "aeslc": 2, "cnn_dailymail": 3, "gigaword": 2, "multi_news": 2,
    "newsroom": 3, "samsum": 3, "xsum": 2, "squad_v1": 2, "squad_v2": 0, "drop": 3,
    "quac": 2, "para_crawl_enes": 0, "wmt14_enfr": 2, "wmt16_translate_csen": 2,
    "wmt16_translate_deen": 2, "wmt16_translate_fien": 2, "wmt16_translate_roen": 2,
    "wmt16_translate_ruen": 2, "wmt16_translate_tren": 2, "true_case": 1, "fix_punct": 0,
    "word_segment": 2, "cosmos_qa": 2, "ag_news_subset": 2, "bool_q": 0,
    "definite_pronoun_resolution": 0, "glue_mrpc": 0, "glue_qqp": 0, "imdb_reviews": 3,
    "paws_wiki": 0, "sentiment140": 4, "story_cloze": 2, "copa": 2, "winogrande": 0,
    "yelp_polarity_reviews": 3, "arc_easy": 3, "arc_challenge": 3, "coqa": 1,
    "opinion_abstracts_rotten_tomatoes": 3, "opinion_abstracts_idebate": 4, "common_gen": 4,
    "dart": 2, "e2e_nlg": 0, "web_nlg_en": 2, "wiki_lingua_english_en": 2, "multirc": 2,
    "cola": 2, "sst2": 2, "trec": 1, "stsb": 2, "hellaswag": 0, "piqa": 2, "openbookqa": 3,
    # Dialog: FLAN trains the inversions as tasks of their own (Dialog-II, at 0.3 of dialog).
    "qrecc": 0, "task_master": 0, "wiki_dialog": 0,
}

# SQuAD v1.1 has no unanswerable questions: its list leaves out the templates that offer
# "unanswerable" (SQuAD v2's wording).
_V2_WORDING = ("unanswerable", "cannot be answered")


def templates_of(dataset: str) -> tuple:
  """The ten templates of one Muffin dataset: its group's task templates, then its
  reverse-direction ones (translation), then its input inversions (`INVERSIONS`)."""
  group = DATASETS[dataset]
  both = tuple(group["opt"]) + tuple(group["noopt"])
  regular = [t for t in both if not t.inverted]
  if dataset == "squad_v1":
    regular = [t for t in regular if not any(w in t.inputs for w in _V2_WORDING)]
  inverted = [t for t in both if t.inverted]
  if "reverse" in group:
    reverse, pool = inverted + list(group["reverse"]), list(group.get("inversions", ()))
  else:
    reverse, pool = [], inverted + list(group.get("more_inversions", ()))
  k = INVERSIONS.get(dataset, 1)
  if k > len(pool):
    raise ValueError(f"Muffin dataset {dataset!r} wants {k} inversions; its group has {len(pool)}")
  chosen = regular[:TEMPLATES_PER_DATASET - k - len(reverse)] + reverse + pool[:k]
  if len(chosen) != TEMPLATES_PER_DATASET:
    raise ValueError(f"Muffin dataset {dataset!r} has {len(chosen)} templates, not "
                     f"{TEMPLATES_PER_DATASET}")
  return tuple(chosen)
