"""Dataset templates of the Muffin tasks that write text: summaries, translation, text
repair, dialog and code, in our own words.

The same layout as `muffin_templates.py` (whose `DATASETS` maps every dataset to its
group): `opt` templates for the "opt" formats, `noopt` ones for the "noopt" formats (none
of these rows has options), each set ending with one input inversion. Shared groups, each
one task (as FLAN's own template sets are shared):
  * TRANSLATION: ParaCrawl en-es, WMT'14 fr-en, WMT'16 cs/de/fi/ro/ru/tr-en (the language
    pair is in the fields);
  * NEXT_TURN: QReCC, Taskmaster, WikiDialog (the next turn of a conversation);
  * DR_REPAIR: DrRepair's plain-code, line-numbers and no-errors presentations (fix a
    C++ program; the error-comments presentation has its own group, as in FLAN).
Fields: summarize/generate/dialog `text, answer`; translate `text, source_lang,
target_lang, answer`.
"""
from __future__ import annotations

from flan_jax.tasks.collections.families import I
from flan_jax.tasks.collections.families import T

EMAIL_SUBJECT = dict(  # AESLC: an email body -> its subject line
    opt=(
        T("{text}\n\nWrite a subject line for this email.", "{answer}"),
        T("What would be a good subject for the following email?\n\n{text}", "{answer}"),
        T("Email:\n{text}\n\nSubject:", "{answer}"),
        T("Give this message a short, informative subject line.\n{text}", "{answer}"),
        T("{text}\n\nIn a few words, what is this email about?", "{answer}"),
        T("Here is the body of an email. Suggest the subject it was sent with.\n\n{text}",
          "{answer}"),
        T("Summarize this email as a subject heading: {text}", "{answer}"),
        I("Write an email whose subject line is \"{answer}\".", "{text}"),
    ),
    noopt=(
        T("Subject line for this email:\n\n{text}", "{answer}"),
        T("{text}\n\nWhat is a fitting subject for the email above?", "{answer}"),
        T("Read the email and write its title.\n{text}", "{answer}"),
        T("Body: {text}\nSubject line:", "{answer}"),
        T("Write the subject of an email that says: {text}", "{answer}"),
        T("{text}\nTitle this email.", "{answer}"),
        T("An office email follows. What should its subject be?\n{text}", "{answer}"),
        I("Subject: {answer}\nWrite the email.", "{text}"),
    ),
)

DEBATE_CLAIM = dict(  # Opinion abstracts, idebate: arguments of a debate -> the claim
    opt=(
        T("{text}\n\nWhat single claim do these arguments support?", "{answer}"),
        T("Read the debate arguments and state the point they argue for.\n\n{text}",
          "{answer}"),
        T("{text}\n\nSum up the arguments as one claim.", "{answer}"),
        T("Write the thesis that the following arguments defend.\n{text}", "{answer}"),
        T("Argument summarization.\n{text}\nClaim:", "{answer}"),
        T("Here are arguments from a debate website. In one sentence, what is their "
          "position?\n{text}", "{answer}"),
        T("{text}\nState the conclusion these points lead to.", "{answer}"),
        I("Write the debate topic and up to ten numbered arguments supporting the claim: "
          "\"{answer}\"", "{text}"),
    ),
    noopt=(
        T("{text}\n\nWhat is the claim?", "{answer}"),
        T("Summarize the argument of this debate side in one sentence.\n{text}",
          "{answer}"),
        T("Debate arguments:\n{text}\nMain claim:", "{answer}"),
        T("What position are these arguments taking?\n{text}", "{answer}"),
        T("Condense the following arguments into the claim they make.\n{text}",
          "{answer}"),
        T("{text}\nWrite the one-sentence stance behind these arguments.", "{answer}"),
        T("Give the point of view argued here: {text}", "{answer}"),
        I("Claim: {answer}\nWrite a debate name and numbered arguments for it.", "{text}"),
    ),
    more_inversions=(
        I("Write the arguments of a debate whose claim is \"{answer}\".", "{text}"),
        I("{answer}\n\nGive a debate title and numbered points that back this up.", "{text}"),
    ),
)

CRITICS_CONSENSUS = dict(  # Opinion abstracts, Rotten Tomatoes: reviews -> consensus
    opt=(
        T("{text}\n\nWrite the critics' consensus for this movie.", "{answer}"),
        T("Summarize what these critics think of the film in one or two sentences.\n\n"
          "{text}", "{answer}"),
        T("{text}\n\nWhat is the overall verdict of the reviewers?", "{answer}"),
        T("Read the reviews and write a consensus statement.\n{text}", "{answer}"),
        T("Movie reviews:\n{text}\nConsensus:", "{answer}"),
        T("Combine these critic snippets into a single summary opinion.\n{text}",
          "{answer}"),
        T("{text}\nHow would a review aggregator sum up the film?", "{answer}"),
        I("Critics' consensus: {answer}\nWrite the movie's name and several short critic "
          "reviews that lead to it.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nWhat do the critics agree on?", "{answer}"),
        T("Write a short consensus of these movie reviews.\n{text}", "{answer}"),
        T("Reviews:\n{text}\n\nSummary of critical opinion:", "{answer}"),
        T("Summarize the reviews below in the style of a critics' consensus.\n{text}",
          "{answer}"),
        T("{text}\nOverall, what is the critical view of this movie?", "{answer}"),
        T("Aggregate the opinions: {text}", "{answer}"),
        T("Give the verdict of these film critics in one sentence.\n{text}", "{answer}"),
        I("Here is a consensus about a movie: {answer}\nWrite the reviews it summarizes.",
          "{text}"),
    ),
    more_inversions=(
        I("Consensus: {answer}\nName a movie it could be about and list a few critic reviews.", "{text}"),
    ),
)

HOW_TO_SUMMARY = dict(  # WikiLingua (English): a how-to article -> its step summary
    opt=(
        T("{text}\n\nSummarize the steps of this how-to article.", "{answer}"),
        T("Write a brief summary of these instructions.\n\n{text}", "{answer}"),
        T("Here is a how-to guide. List its main steps in a few sentences.\n{text}",
          "{answer}"),
        T("Guide: {text}\n\nShort version:", "{answer}"),
        T("{text}\n\nWhat are the key instructions in the text above?", "{answer}"),
        T("Condense this tutorial into a short summary.\n{text}", "{answer}"),
        T("Summarize how to do what this article explains: {text}", "{answer}"),
        I("Write a how-to article that these summarized steps come from: {answer}",
          "{text}"),
    ),
    noopt=(
        T("{text}\n\nSummary:", "{answer}"),
        T("Summarize the instructions below.\n{text}", "{answer}"),
        T("What does this how-to article tell you to do, in brief?\n{text}", "{answer}"),
        T("Give the gist of these steps: {text}", "{answer}"),
        T("{text}\nWrite a one-paragraph summary of the guide.", "{answer}"),
        T("Shorten this tutorial to its essentials.\n{text}", "{answer}"),
        T("Instructions: {text}\nIn short:", "{answer}"),
        I("Steps in brief: {answer}\nWrite the full how-to article.", "{text}"),
    ),
)

TRANSLATION = dict(  # ParaCrawl, WMT'14, WMT'16: the language pair is in the fields
    opt=(
        T("Translate this {source_lang} text into {target_lang}.\n\n{text}", "{answer}"),
        T("{text}\n\nWhat is that in {target_lang}?", "{answer}"),
        T("{source_lang} to {target_lang}: {text}", "{answer}"),
        T("Give a {target_lang} translation of the following {source_lang} sentence: "
          "{text}", "{answer}"),
        T("How would you write \"{text}\" in {target_lang}?", "{answer}"),
        T("Source ({source_lang}): {text}\nTranslation ({target_lang}):", "{answer}"),
        T("Please translate into {target_lang}:\n{text}", "{answer}"),
        I("Translate this {target_lang} text into {source_lang}.\n\n{answer}", "{text}"),
    ),
    noopt=(
        T("Translate from {source_lang} into {target_lang}: {text}", "{answer}"),
        T("{text}\n\nTranslate the text above into {target_lang}.", "{answer}"),
        T("In {target_lang}, this reads:\n{text}", "{answer}"),
        T("{source_lang}: {text}\n{target_lang}:", "{answer}"),
        T("What does \"{text}\" say in {target_lang}?", "{answer}"),
        T("Render the following {source_lang} text in {target_lang}.\n{text}", "{answer}"),
        T("Machine translation, {source_lang} to {target_lang}.\nInput: {text}",
          "{answer}"),
        I("{target_lang}: {answer}\nWrite it in {source_lang}.", "{text}"),
    ),
    reverse=(
        I("{target_lang}: {answer}\n{source_lang}:", "{text}"),
    ),
    inversions=(
        I("{answer}\n\nWhat language is this written in?", "{target_lang}"),
        I("Write a sentence in {source_lang}.", "{text}"),
    ),
)

PUNCTUATION = dict(  # Fix punctuation: a sentence stripped of its punctuation
    opt=(
        T("Add punctuation to this text: {text}", "{answer}"),
        T("{text}\n\nRewrite the text above with correct punctuation.", "{answer}"),
        T("Put the commas, full stops and other marks back into this sentence.\n{text}",
          "{answer}"),
        T("This sentence lost its punctuation: {text}\nRestore it.", "{answer}"),
        T("Unpunctuated: {text}\nPunctuated:", "{answer}"),
        T("Please punctuate the following properly.\n{text}", "{answer}"),
        T("Fix the punctuation: {text}", "{answer}"),
        I("Here is a punctuated sentence: {answer}\nWrite it with all punctuation "
          "removed.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nAdd the missing punctuation.", "{answer}"),
        T("Punctuate this: {text}", "{answer}"),
        T("Insert punctuation where it belongs.\n{text}", "{answer}"),
        T("Text without punctuation: {text}\nCorrected text:", "{answer}"),
        T("Write this with proper punctuation: {text}", "{answer}"),
        T("{text}\nCan you punctuate this sentence?", "{answer}"),
        T("Restore punctuation marks: {text}", "{answer}"),
        I("Remove every punctuation mark from: {answer}", "{text}"),
    ),
)

TRUE_CASE = dict(  # True case: a sentence written all in lower case
    opt=(
        T("Restore the capitalization of this text: {text}", "{answer}"),
        T("{text}\n\nWrite the text above with correct upper and lower case letters.",
          "{answer}"),
        T("This sentence was lowercased. Capitalize it properly.\n{text}", "{answer}"),
        T("Lower case: {text}\nCorrect case:", "{answer}"),
        T("Fix the capital letters in: {text}", "{answer}"),
        T("Please capitalize names and sentence starts in the following.\n{text}",
          "{answer}"),
        T("Truecase this sentence: {text}", "{answer}"),
        I("Write this sentence all in lower case: {answer}", "{text}"),
    ),
    noopt=(
        T("{text}\n\nMake the capitalization correct.", "{answer}"),
        T("Capitalize this properly: {text}", "{answer}"),
        T("Put capital letters where they belong.\n{text}", "{answer}"),
        T("Text in lower case: {text}\nProperly cased:", "{answer}"),
        T("Rewrite with correct capitalization: {text}", "{answer}"),
        T("{text}\nHow is this written with proper case?", "{answer}"),
        T("Restore upper case letters: {text}", "{answer}"),
        I("Convert to lower case: {answer}", "{text}"),
    ),
)

WORD_SEGMENT = dict(  # Word segmentation: a sentence with its spaces removed
    opt=(
        T("Add spaces between the words: {text}", "{answer}"),
        T("{text}\n\nThe spaces were removed from this sentence. Put them back.",
          "{answer}"),
        T("Split this run-together text into words.\n{text}", "{answer}"),
        T("No spaces: {text}\nWith spaces:", "{answer}"),
        T("Segment the following string into words: {text}", "{answer}"),
        T("Please insert the missing spaces.\n{text}", "{answer}"),
        T("Separate the words in: {text}", "{answer}"),
        I("Write this sentence without any spaces: {answer}", "{text}"),
    ),
    noopt=(
        T("{text}\n\nWrite this with spaces between the words.", "{answer}"),
        T("Insert spaces: {text}", "{answer}"),
        T("Where do the words break? {text}", "{answer}"),
        T("Text without spaces: {text}\nSegmented text:", "{answer}"),
        T("Make this readable by adding spaces: {text}", "{answer}"),
        T("{text}\nWhat does it say, with the words separated?", "{answer}"),
        T("Word segmentation: {text}", "{answer}"),
        I("Remove all spaces from: {answer}", "{text}"),
    ),
)

NEXT_TURN = dict(  # QReCC, Taskmaster, WikiDialog: the next turn of a conversation
    opt=(
        T("{text}\n\nWrite the next turn of this conversation.", "{answer}"),
        T("Continue the dialog with one reply.\n\n{text}", "{answer}"),
        T("Conversation:\n{text}\n\nWhat does the next speaker say?", "{answer}"),
        T("{text}\nReply as the next speaker would.", "{answer}"),
        T("Here is a conversation so far. Give the response that comes next.\n{text}",
          "{answer}"),
        T("Dialog history:\n{text}\nNext turn:", "{answer}"),
        T("Predict the next utterance.\n{text}", "{answer}"),
        I("Write a conversation whose next turn would be: \"{answer}\"", "{text}"),
    ),
    noopt=(
        T("{text}\n\nWhat is said next?", "{answer}"),
        T("Respond to the last message in this conversation.\n{text}", "{answer}"),
        T("{text}\nNext:", "{answer}"),
        T("Read the chat and write the following reply.\n{text}", "{answer}"),
        T("How should the conversation continue?\n{text}", "{answer}"),
        T("Dialog so far:\n{text}\n\nResponse:", "{answer}"),
        T("Give the next line of this dialog.\n{text}", "{answer}"),
        I("The next reply is \"{answer}\". Write the conversation before it.", "{text}"),
    ),
)

PYTHON_SOLUTION = dict(  # DeepMind CodeContests: a problem statement -> a Python solution
    opt=(
        T("{text}\n\nWrite a Python program that solves this problem.", "{answer}"),
        T("Solve the following programming contest problem in Python.\n\n{text}",
          "{answer}"),
        T("Problem:\n{text}\n\nPython solution:", "{answer}"),
        T("Implement a solution in Python that reads the input and prints the answer.\n"
          "{text}", "{answer}"),
        T("{text}\n\nGive code in Python 3 for this task.", "{answer}"),
        T("Here is a competitive programming problem. Write Python code for it.\n{text}",
          "{answer}"),
        T("Write a Python script for this problem statement: {text}", "{answer}"),
        I("Here is a Python solution to a programming problem:\n{answer}\nWrite the "
          "problem statement it solves.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nSolve it in Python.", "{answer}"),
        T("Python code for this problem:\n{text}", "{answer}"),
        T("Write a program in Python.\n\n{text}", "{answer}"),
        T("Problem statement: {text}\nCode:", "{answer}"),
        T("How would you solve this in Python?\n{text}", "{answer}"),
        T("{text}\nProvide a working Python program.", "{answer}"),
        T("Code the following problem in Python: {text}", "{answer}"),
        I("Code:\n{answer}\nWhat problem does this program solve? Write its statement.",
          "{text}"),
    ),
)

DR_REPAIR = dict(  # DrRepair plain code / line numbers / no errors: fix a C++ program
    opt=(
        T("{text}\n\nThis C++ program does not compile. Fix it.", "{answer}"),
        T("Repair the compilation error in the following C++ code.\n\n{text}",
          "{answer}"),
        T("Program:\n{text}\n\nCorrection:", "{answer}"),
        T("Find and fix the bug that stops this C++ program from compiling.\n{text}",
          "{answer}"),
        T("{text}\n\nWhat change makes this code compile? Answer in the format of the "
          "input.", "{answer}"),
        T("Here is C++ code written by a student. Correct it if it has an error.\n{text}",
          "{answer}"),
        T("Fix this program: {text}", "{answer}"),
        I("Here is the corrected code (or the fixes):\n{answer}\nWrite the C++ program "
          "before it was repaired.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nFix the code.", "{answer}"),
        T("Correct the C++ program below.\n{text}", "{answer}"),
        T("C++ code:\n{text}\nRepaired:", "{answer}"),
        T("Does this program have a compile error? Repair it.\n{text}", "{answer}"),
        T("Debug this C++ code so it compiles.\n{text}", "{answer}"),
        T("{text}\nWrite the fix.", "{answer}"),
        T("Program repair task: {text}", "{answer}"),
        I("Repair: {answer}\nWhat was the program before this repair?", "{text}"),
    ),
)

DR_REPAIR_COMMENTS = dict(  # DrRepair error comments: the compiler message is in the code
    opt=(
        T("{text}\n\nThe compiler's error is written as a comment on the line it names. "
          "Fix the program.", "{answer}"),
        T("Use the error message in the comments to repair this C++ code.\n\n{text}",
          "{answer}"),
        T("Code with its compiler error:\n{text}\n\nFix:", "{answer}"),
        T("Read the compiler error annotated in this program and correct the line.\n"
          "{text}", "{answer}"),
        T("{text}\n\nWhich line change resolves the commented compile error?", "{answer}"),
        T("Here is a C++ program and the error it gives. Repair it.\n{text}", "{answer}"),
        T("Fix the error the comment points to: {text}", "{answer}"),
        I("Corrected lines:\n{answer}\nWrite the numbered C++ program before the fix, "
          "with the compiler error as a comment.", "{text}"),
    ),
    noopt=(
        T("{text}\n\nFix the commented error.", "{answer}"),
        T("Repair this code; the compiler message is given as a comment.\n{text}",
          "{answer}"),
        T("Program and error:\n{text}\nCorrected line(s):", "{answer}"),
        T("How do you fix the compile error marked in this code?\n{text}", "{answer}"),
        T("{text}\nRewrite the line that causes the error.", "{answer}"),
        T("Compiler feedback is inline. Debug: {text}", "{answer}"),
        T("Correct the C++ program using the error comment.\n{text}", "{answer}"),
        I("Fix: {answer}\nWrite the program with its compiler error as a comment.",
          "{text}"),
    ),
)
