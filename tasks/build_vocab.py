"""Builds the default SentencePiece vocabulary shipped as `tasks/data/flan_jax_spm.model`.

  python -m flan_jax.tasks.build_vocab [--output PATH] [--vocab_size 2048]

Trains a unigram model on the embedded tasks rendered in every FLAN format plus the generic
instruction text below. T5 conventions: pad=0, eos=1, unk=2, no bos; byte fallback so any
text encodes; "\\n" is its own piece (the FLAN formats use it); digits are split so numbers
tokenize digit by digit. Normalization is near identity (`NORMALIZATION_RULES`: no NFKC
table, which would make the model ten times larger and slower to load in every tf.data
tokenizer) and keeps whitespace as is, so decode(encode(text)) == text. Deterministic:
one thread, no sampling, fixed corpus order.
"""
from __future__ import annotations

import argparse
import io
import pathlib
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from flan_jax.tasks import embedded_families as families
from flan_jax.tasks import templates as tpl
from flan_jax.tasks import vocab

EXAMPLES_PER_FAMILY = 600
# SentencePiece normalization rules (hex code points, tab, replacement): no-break space ->
# space, CR LF -> LF. A non-empty table also keeps sentencepiece from logging a warning
# each time tf.data builds a tokenizer.
NORMALIZATION_RULES = "A0\t20\nD A\tA\n"

GENERIC_TEXT = """\
Read the passage below and answer the question that follows.
Summarize the following article in one or two sentences.
Translate the sentence from English to French. Translate this text into German.
Write a short story about a dog who learns to fly. Write a poem about the ocean at night.
Premise: A man is playing a guitar on the street. Hypothesis: A person is making music.
Does the premise entail the hypothesis? Is the second sentence true given the first one?
Choose the best answer from the options below. Select the correct option.
Answer the following question. Give a short answer. Explain your reasoning.
Classify the sentiment of this review as positive or negative.
The movie was wonderful and the actors were great, but the ending was too long.
What is the main idea of this paragraph? Which of the following statements is correct?
Generate a title for this news article. Suggest a good headline for the text.
Fill in the blank with the most suitable word. Complete the sentence.
Is this question answerable from the context? If not, say that it cannot be answered.
Extract the names of all people mentioned in the text. List the key points.
Rewrite the sentence in the passive voice. Correct the grammar of this sentence.
Find the odd one out. Identify the topic of the conversation.
Given the context, what will most likely happen next?
Context: The weather was cold and the roads were covered in ice.
Question: Why did the bus arrive late? Answer: Because the roads were icy.
The scientist measured the temperature of the water every hour during the experiment.
People in the village celebrated the harvest with music, food and dancing.
The company announced that its profits increased by ten percent this year.
Children learn languages quickly when they hear them every day at home and at school.
Paris is the capital of France. The river flows through the middle of the city.
The first step is to heat the pan. Then add the oil and the chopped onions.
Please provide a detailed description of the process, step by step.
Do the two questions ask the same thing? Are these two sentences paraphrases?
Yes. No. Maybe. It is not possible to tell. True. False. Neither.
Input: a list of numbers. Output: the numbers in increasing order.
Example: Question: What color is the sky on a clear day? Answer: blue.
Instructions: answer with a single word. Respond with yes or no.
Who wrote the book? When did the war end? Where is the museum? How does it work?
This task is about understanding dialogues between two people.
Person A: Did you finish the report? Person B: Not yet, I will send it tomorrow.
The answer is correct because the numbers add up to the total.
Let's think step by step. First, count the objects. Then compare the two values.
Therefore, the final answer is the second option.
"""

COMMON_WORDS = """
a about above across act action add after again against age ago agree air all allow almost
alone along already also always am among amount an and animal another answer any anyone
anything appear area argue arm army around arrive art article as ask at attack attention
author away baby back bad bag bank base be beautiful because become been before begin
behind believe below best better between big bill billion bit black blood blue board body
born both box boy break bring brother budget build building business but buy by call
camera campaign can cancer candidate capital car care career carry case catch cause cell
center central century certain chair challenge chance change character charge check child
choice choose church citizen civil claim class clear close coach cold collection college
color come common community company compare computer concern condition conference
consider consumer contain continue control cost could country couple course court cover
create crime cultural culture current customer cut dark data daughter day dead deal death
debate decade decide decision deep defense degree democrat describe design despite detail
determine develop development difference different difficult dinner direction director
discover discuss discussion disease do doctor door down draw dream drive drop during each
early east easy eat economic economy edge education effect effort eight either election
else employee end energy enjoy enough enter entire environment especially establish even
evening event ever every everybody everyone everything evidence exactly example executive
exist expect experience expert explain eye face fact factor fail fall family far fast father
fear federal feel feeling few fight figure fill film final finally financial find fine finger
finish fire firm first fish five floor fly focus follow food foot for force foreign forget
form former forward four free friend from front full fund future game garden gas general
generation get girl give glass go goal good government great green ground group grow growth
guess gun guy hair half hand hang happen happy hard have he head health hear heart heat heavy
help her here herself high him himself his history hit hold home hope hospital hot hotel hour
house how however huge human hundred husband idea identify if image imagine impact important
improve in include including increase indeed indicate individual industry information inside
instead institution interest interesting international interview into investment involve
issue it item its itself job join just keep kid kill kind kitchen know knowledge land language
large last late later laugh law lawyer lay lead leader learn least leave left leg legal less
let level lie life light like likely line list listen little live local long look lose loss
lot love low machine magazine main maintain major majority make man manage management manager
many market marriage material matter may maybe me mean measure media medical meet meeting
member memory mention message method middle might military million mind minute miss mission
model modern moment money month more morning most mother mouth move movement movie much music
must my myself name nation national natural nature near nearly necessary need network never
new news newspaper next nice night no none nor north not note nothing notice now number occur
of off offer office officer official often oh oil ok old on once one only onto open operation
opportunity option or order organization other others our out outside over own owner page pain
painting paper parent part participant particular particularly partner party pass past patient
pattern pay peace people per perform performance perhaps period person personal phone physical
pick picture piece place plan plant play player point police policy political politics poor
popular population position positive possible power practice prepare present president
pressure pretty prevent price private probably problem process produce product production
professional professor program project property protect prove provide public pull purpose push
put quality question quickly quite race radio raise range rate rather reach read ready real
reality realize really reason receive recent recently recognize record red reduce reflect
region relate relationship religious remain remember remove report represent require research
resource respond response responsibility rest result return reveal rich right rise risk road
rock role room rule run safe same save say scene school science scientist score sea season seat
second section security see seek seem sell send senior sense series serious serve service set
seven several shake share she shoot short shot should shoulder show side sign significant
similar simple simply since sing single sister sit site situation six size skill skin small
smile so social society soldier some somebody someone something sometimes son song soon sort
sound source south southern space speak special specific speech spend sport spring staff stage
stand standard start state statement station stay step still stock stop store story strategy
strong structure student study stuff style subject success successful such suddenly suffer
suggest summer support sure surface system take talk task teach teacher team technology
television tell ten tend term test than thank that the their them themselves then theory there
these they thing think third this those though thought thousand threat three through
throughout throw thus time to today together tonight too top total tough toward town trade
traditional training travel treat treatment tree trial trip trouble true truth try turn two
type under understand unit until up upon us use usually value various very victim view
violence visit voice vote wait walk wall want war watch water way we weapon wear week weight
well west western what whatever when where whether which while white who whole whom whose why
wide wife will win wind wish with within without woman wonder word work worker world worry
would write writer wrong yard yeah year yes yet you young your yourself
"""


def corpus() -> list[str]:
  """The training sentences, in a fixed order."""
  lines = GENERIC_TEXT.splitlines() + COMMON_WORDS.split()
  lines += [w.capitalize() for w in COMMON_WORDS.split()]
  for family in families.TRAIN_FAMILIES + families.HELDOUT_FAMILIES:
    rows = families.examples(family.name, "train")[:EXAMPLES_PER_FAMILY]
    for i, ex in enumerate(rows):
      template = family.templates[i % len(family.templates)]
      for fmt in tpl.FORMATS.values():
        if fmt.cot and not family.rationale_key:
          continue
        options = ex.get(family.options_key) if family.options_key else None
        rationale = ex.get(family.rationale_key) if family.rationale_key else None
        inputs, targets = tpl.render(template, ex, fmt, options=options, rationale=rationale)
        lines.append(tpl.fewshot_prompt([(inputs, targets)], inputs) if fmt.fewshot
                     else inputs)
        lines.append(targets)
  lines += [" ".join(families.WORDS), " ".join(families.NAMES), " ".join(families.ITEMS)]
  return lines


def build(output: pathlib.Path, vocab_size: int = 2048) -> bytes:
  """Trains the model, writes it to `output` and returns its bytes."""
  model = io.BytesIO()
  with tempfile.TemporaryDirectory() as tmp:
    rules = pathlib.Path(tmp) / "normalization.tsv"
    rules.write_text(NORMALIZATION_RULES)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=vocab.PAD_ID, eos_id=vocab.EOS_ID, unk_id=vocab.UNK_ID, bos_id=-1,
        pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        byte_fallback=True,
        user_defined_symbols=["\n"],
        split_digits=True,
        normalization_rule_tsv=str(rules),
        remove_extra_whitespaces=False,
        character_coverage=1.0,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=16384,
        num_threads=1,
        minloglevel=2,
    )
  proto = sentencepiece_model_pb2.ModelProto.FromString(model.getvalue())
  proto.normalizer_spec.ClearField("normalization_rule_tsv")  # a temporary path
  data = proto.SerializeToString(deterministic=True)
  output.parent.mkdir(parents=True, exist_ok=True)
  output.write_bytes(data)
  return data


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output", type=pathlib.Path, default=vocab.DEFAULT_SPM_PATH)
  parser.add_argument("--vocab_size", type=int, default=2048)
  args = parser.parse_args(argv)
  data = build(args.output, args.vocab_size)
  print(f"wrote {args.output} ({len(data)} bytes, {args.vocab_size} pieces)")


if __name__ == "__main__":
  main()
