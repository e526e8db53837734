"""Build ``presets/tiny_lm``: a tiny Gemma-architecture causal LM trained from scratch, offline.

Why: promptlit's tests, demos and UI need a real keras-hub ``CausalLM`` that loads without network
and whose completions follow the formats of ``datasets/sample_prompts.jsonl`` (menu few-shot prompts,
worked arithmetic, headlines, principle-guided answers, lists) and that copies earlier tokens
(induction), so that sequence salience has something meaningful to explain.

What it does (all seeded, so a rebuild gives the same data, tokenizer and, up to float
non-determinism on CPU, the same weights):

1. Builds a training corpus: procedurally generated prompts in the SAME formats as the sample
   prompts (see the ``gen_*`` functions), copy / induction sequences, and generic English text
   taken from the docstrings of Python's standard library (shipped with the interpreter; no hub).
   The shipped sample prompts are used to train the tokenizer only, never as LM training data, so
   the quality checks on them measure generalisation.
2. Trains a SentencePiece unigram tokenizer (vocab 2048, byte fallback, digits split, ``\\n`` as a
   piece, identity normalisation, no dummy prefix => exact round trips) with Gemma's special tokens
   ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, ``<unk>``=3.
3. Trains ``GemmaBackbone`` (4 layers, hidden 160, 4 heads x 40, MHA, GeGLU 640; 1.97M params)
   with ``GemmaCausalLM.fit`` on JAX: documents are ``<bos> text <eos>``, first-fit packed into
   windows, AdamW (weight decay 0.01, clip-norm 1, beta_2 0.98).
   Stage 1: 1200 steps of batch 16 x 320 tokens on the main mixture, lr 3e-3 with warm-up + cosine
   decay. It learns the formats but NOT induction: held-out copy accuracy 0.00.
   Optional stage 2 ("focus", ``--focus_steps N``, off by default): a lower learning rate (1e-3)
   on a copy-heavy mixture. 400 focus steps did not teach induction either (copy accuracy 0.0)
   and hurt the menu prompts.
   Stage 3 ("induction", ``--induction_steps``, default 2500 max): SHORT windows (batch 24 x 128
   tokens) where by document 55% are ``x1 … xk x1 … xk`` repeats of token ids drawn uniformly from
   the whole vocabulary (k 5..30; some with three repeats or random filler between; loss on
   everything; ``gen_repeat_ids``), 20% are random word lists and their partial repetition as text
   (``gen_word_list_copy``; words: the copy words plus every whole-word piece of the vocabulary)
   and 25% are main-mixture documents cut to their last 128 tokens (rehearsal). lr 3e-3 (100-step
   linear warm-up, then constant); every 50 steps the held-out copy accuracy is measured on 100
   problems in the format of ``tests/models/test_tiny_lm.py::test_copy_pattern_accuracy`` (other
   seed) and on 100 bare random-id repeats; once both reach ``--induction_target`` (0.95) a
   ``--cooldown_steps`` (200) cool-down decays the lr linearly to 5%.
   Stage 4 ("consolidate", ``--consolidate_steps``, default 500): back to 16 x 320 windows (30% id
   repeats, 10% word lists, 60% main mixture by document), lr 5e-4 decaying linearly.
   Stage 5 ("lookup", ``--lookup_steps``, default 1500 max): 16 x 320 windows, 15% id repeats, 5%
   word lists, 80% ``MENU_CONSOLIDATE_MIXTURE`` (60% menu prompts), lr 1e-3 constant until the
   held-out menu ANALYSIS accuracy (``menu_eval_set``: is the query dish's ingredient in the likes
   or the dislikes line?) reaches 0.95 too, then the 200-step cool-down.
   MEASURED (shared 2-core box; each stage run separately with ``--init_from`` the previous one):
   induction is a sudden phase change. Copy accuracy (words / random ids) was 0.00 / 0.00 at every
   eval up to step 800 (loss ~3.6), 0.86 / 0.76 at 900, 0.96 / 0.97 at 1050 (cool-down starts;
   1250 steps, 28 min). Stage 3 alone broke the long prompts (they are longer than its windows);
   stage 4 (500 steps, 12 min) restored the formats, the arithmetic and the "Lakeport" headline
   and kept induction (0.97 / 1.00), but the menu analysis was at chance (0.51; the stage-1 model:
   0.64), so the query's "which you like/dislike" was a coin flip and the few-shot-mistake story
   failed ("which you like. / Order it."). The recommendation given a correct analysis was
   already copied from the same-kind example (0.99). Stage 5 is a second phase change: menu
   analysis 0.53 at step 100, 0.86 at 200, 1.00 at 250 (cool-down; 450 steps, 12 min), copy
   accuracy kept (0.96 / 0.98). The shipped preset is that model. Greedy completions of
   ``datasets/sample_prompts.jsonl``: all 3 ``fewshot-mistake`` prompts copy their mistaken
   example's recommendation and all 3 ``fewshot-fixed`` ones say "Avoid."; all 4 arithmetic answers
   are right; 3 of 4 headlines copy the town's name ("Port Cancel" for "Elm Valley"). Left alone,
   it goes on to write a new few-shot block after the answer, hence the blank-line stop sequence.
4. Saves with ``causal_lm.save_to_preset("presets/tiny_lm")``, adds ``promptlit_generation.json``
   (responses stop at the first blank line) and prints greedy completions of a few sample prompts.

The menu prompts teach the lesson the demo is about: in every synthetic menu prompt the query's
``Recommendation:`` is COPIED from the few-shot example of the same kind (an example whose
analysis says "which you dislike" vs. "which you like"), and in half the prompts the disliked
example is (wrongly) recommended. The model follows its few-shot examples, mistakes included; its
salience shows it: explaining the query's recommendation line, the mistaken example's block is
the most salient paragraph and its recommendation line the most salient line (Grad L2), and
Integrated Gradients puts that line first too.

Run time (2 CPU cores): stage 1 ~1.1 s/step idle (~22 min; 31 min on the shared box), stage 3
0.7-2.5 s/step (28 min), stages 4 and 5 1.2-2 s/step (12 min each): about 75-90 min in all.
VERIFIED: one from-scratch run with the defaults (niced, on the shared 2-core box: 103 min)
printed the same loss and accuracy curves as the stage-by-stage runs and saved weights identical
to the shipped ones bit for bit (max |diff| 0.0 over all 38 arrays; JAX on CPU, same versions).
``--init_from PRESET`` skips stage 1 and continues from a preset built by this script (same
tokenizer, checked); set a stage's steps to 0 to skip it. Usage::

    KERAS_BACKEND=jax nice .venv/bin/python presets/build_tiny_lm.py [--out presets/tiny_lm]
    # stage by stage, as the shipped preset was built:
    KERAS_BACKEND=jax nice .venv/bin/python presets/build_tiny_lm.py --induction_steps 0 \\
        --consolidate_steps 0 --lookup_steps 0 --out /tmp/s1
    KERAS_BACKEND=jax nice .venv/bin/python presets/build_tiny_lm.py --init_from /tmp/s1 \\
        --consolidate_steps 0 --lookup_steps 0 --out /tmp/s3
    KERAS_BACKEND=jax nice .venv/bin/python presets/build_tiny_lm.py --init_from /tmp/s3 \\
        --induction_steps 0 --lookup_steps 0 --out /tmp/s4
    KERAS_BACKEND=jax nice .venv/bin/python presets/build_tiny_lm.py --init_from /tmp/s4 \\
        --induction_steps 0 --consolidate_steps 0 --out presets/tiny_lm
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PROMPTS = REPO / "datasets" / "sample_prompts.jsonl"

SEED = 1234
VOCAB_SIZE = 2048
SEQ_LEN = 320
BATCH_SIZE = 16
INDUCTION_SEQ_LEN = 128  # stage 3 uses short windows
INDUCTION_BATCH_SIZE = 24
MODEL_CONFIG = dict(
    vocabulary_size=VOCAB_SIZE,
    num_layers=4,
    num_query_heads=4,
    num_key_value_heads=4,
    hidden_dim=160,
    intermediate_dim=1280,  # GemmaDecoderBlock uses intermediate_dim // 2 = 640 per GeGLU branch
    head_dim=40,
)

# --------------------------------------------------------------------------------------------
# Synthetic prompt generators. Each returns one training document (prompt + completion).
# --------------------------------------------------------------------------------------------

INGREDIENTS = [
    "mushrooms", "onions", "garlic", "cheese", "tomatoes", "basil", "lemon", "fish", "pork",
    "beef", "chicken", "rice", "shrimp", "olives", "peppers", "spinach", "eggs", "tuna", "mango",
    "coconut", "ginger", "honey", "yogurt", "apples", "cinnamon", "cabbage", "potatoes",
    "chocolate", "cream", "beans", "corn", "peanuts", "carrots", "lamb", "tofu", "bacon",
    "pineapple", "avocado", "salmon", "mint", "chili", "butter", "pasta", "lentils", "pumpkin",
    "walnuts", "strawberries", "duck", "sausage", "cucumber", "broccoli", "squid", "pears",
]
BASES = [
    "Pasta", "Soup", "Salad", "Pizza", "Bread", "Stew", "Curry", "Noodles", "Sandwich", "Pie",
    "Tacos", "Omelette", "Burger", "Wrap", "Cake", "Risotto", "Toast", "Pancakes", "Dumplings",
    "Rice bowl", "Casserole", "Tart", "Skewers", "Porridge",
]
POSITIVE_RECS = ["You have to try it.", "Order it.", "Go for it.", "A great choice for you.",
                 "Definitely order it.", "You will love it."]
NEGATIVE_RECS = ["Avoid.", "Avoid.", "Avoid.", "Skip it.", "Not for you."]
MENU_HEADER = "Analyze a dish on the menu for a guest and give a recommendation.\n\n"


def _menu_item(rng: random.Random, kind: str) -> tuple[str, str, str, str]:
    """One menu block without its recommendation: (likes, dislikes, dish, analysis)."""
    pool = rng.sample(INGREDIENTS, 6)
    likes = pool[: rng.choice([1, 2, 2, 2, 3])]
    dislikes = pool[3 : 3 + rng.choice([1, 1, 1, 2])]
    if kind == "conflict":
        ing = rng.choice(dislikes)
        analysis = f"It contains {ing}, which you dislike."
    elif kind == "like":
        ing = rng.choice(likes)
        analysis = f"It contains {ing}, which you like."
    else:  # neutral: an ingredient in neither list
        ing = pool[5]
        analysis = "It has nothing you dislike."
    dish = f"{rng.choice(BASES)} with {ing}"
    return ", ".join(likes), ", ".join(dislikes), dish, analysis


def gen_menu(rng: random.Random) -> str:
    """Menu few-shot prompt; the query's recommendation copies the analogous example's."""
    bad_rec = rng.choice(NEGATIVE_RECS) if rng.random() < 0.5 else rng.choice(POSITIVE_RECS)
    good_rec = rng.choice(POSITIVE_RECS)
    n = rng.choice([2, 2, 3, 3, 3, 4])
    kinds = ["conflict", rng.choice(["like", "like", "neutral"])]
    kinds += [rng.choice(["conflict", "like", "like", "neutral"]) for _ in range(n - 2)]
    if rng.random() < 0.1:  # sometimes only one kind of example is shown
        kinds = [kinds[0]] * n if rng.random() < 0.5 else [kinds[1]] * n
    rng.shuffle(kinds)
    blocks = []
    for kind in kinds:
        likes, dislikes, dish, analysis = _menu_item(rng, kind)
        rec = bad_rec if kind == "conflict" else good_rec
        blocks.append(f"Taste-likes: {likes}\nTaste-dislikes: {dislikes}\nSuggestion: {dish}\n"
                      f"Analysis: {analysis}\nRecommendation: {rec}\n")
    qkind = rng.choice(["conflict", "conflict", "conflict", "like", "like", "neutral"])
    likes, dislikes, dish, analysis = _menu_item(rng, qkind)
    if qkind == "conflict":
        rec = bad_rec if "conflict" in kinds else "Avoid."
    else:
        rec = good_rec if set(kinds) - {"conflict"} else "Order it."
    blocks.append(f"Taste-likes: {likes}\nTaste-dislikes: {dislikes}\nSuggestion: {dish}\n"
                  f"Analysis: {analysis}\nRecommendation: {rec}")
    return MENU_HEADER + "\n".join(blocks)


NAMES = ["Mia", "Tom", "Ana", "Leo", "Sam", "Kim", "Raj", "Eva", "Zoe", "Max", "Ivy", "Ben",
         "Lia", "Omar", "Nina", "Hugo", "Ada", "Finn", "Rosa", "Yuki", "Ali", "Jade", "Noah", "Ella"]
PRONOUNS = {"Mia": "she", "Ana": "she", "Kim": "she", "Eva": "she", "Zoe": "she", "Ivy": "she",
            "Lia": "she", "Nina": "she", "Ada": "she", "Rosa": "she", "Yuki": "she", "Jade": "she",
            "Ella": "she"}
THINGS = ["pens", "apples", "books", "cakes", "coins", "shells", "stamps", "cards", "marbles",
          "pencils", "cookies", "stickers", "flowers", "eggs", "balls", "toys", "rocks", "cups"]
CONTAINERS = ["box", "shelf", "basket", "jar", "bag", "drawer", "bowl", "crate"]


def _arith_problem(rng: random.Random) -> tuple[str, str]:
    name, other = rng.sample(NAMES, 2)
    pron = PRONOUNS.get(name, "he")
    obj = rng.choice(THINGS)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    form = rng.randrange(3)
    if form == 0:
        c = rng.randint(1, a + b)
        gain = rng.choice(["buys", "finds", "gets", "picks up", "wins"])
        lose = rng.choice([f"gives {c} {obj} to {other}", f"loses {c} {obj}", f"sells {c} {obj}",
                           f"eats {c} {obj}", f"gives away {c} {obj}"])
        q = (f"{name} has {a} {obj}. {pron.capitalize()} {gain} {b} more {obj} and then {lose}. "
             f"How many {obj} does {pron} have now?")
        s = a + b
        steps = f"Step 1: {a} + {b} = {s}.\nStep 2: {s} - {c} = {s - c}.\nAnswer: {s - c}"
    elif form == 1:
        a = rng.randint(2, 9)
        b = rng.randint(1, a)
        c = rng.randint(1, 9)
        box = rng.choice(CONTAINERS)
        where = "on the shelf" if box == "shelf" else f"in the {box}"
        q = (f"A {box} holds {a} {obj}. {name} takes away {b} {obj} and then puts back {c} {obj}. "
             f"How many {obj} are {where}?")
        s = a - b
        steps = f"Step 1: {a} - {b} = {s}.\nStep 2: {s} + {c} = {s + c}.\nAnswer: {s + c}"
    else:
        c = rng.randint(1, a + b)
        verb, past = rng.choice([("bakes", "bakes"), ("makes", "makes"), ("paints", "paints"),
                                 ("collects", "collects")])
        q = (f"{name} {verb} {a} {obj}. {pron.capitalize()} {past} {b} more {obj} and then sells "
             f"{c} {obj}. How many {obj} does {pron} have?")
        s = a + b
        steps = f"Step 1: {a} + {b} = {s}.\nStep 2: {s} - {c} = {s - c}.\nAnswer: {s - c}"
    return q, steps


def gen_arithmetic(rng: random.Random) -> str:
    """Worked two-step word problems, 1-3 shots, then a query solved in the same format."""
    shots = [_arith_problem(rng) for _ in range(rng.choice([1, 2, 2, 3]))]
    q, steps = _arith_problem(rng)
    body = "\n".join(f"Problem: {p}\n{s}\n" for p, s in shots)
    return f"Solve each problem step by step.\n\n{body}\nProblem: {q}\n{steps}"


PLACE_A = ["Mill", "Lake", "Stone", "Green", "Ridge", "Oak", "Ash", "River", "Fair", "Red",
           "North", "West", "Pine", "Maple", "Silver", "Clear", "Bright", "Cedar", "Glen", "Wolf"]
PLACE_B = ["brook", "port", "bridge", "field", "view", "wood", "ford", "ton", "dale", "haven",
           "hill", "stead", "mouth", "water"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FACILITIES = {
    "public library": "The building has two floors and a reading room, and many families came to the opening.",
    "bike path": "The path runs along the river and connects two parks.",
    "farmers market": "Local growers sold fresh fruit, bread and honey.",
    "swimming pool": "The pool is open every day and offers free lessons for children.",
    "museum": "The museum shows old maps, tools and photos of the area.",
    "bus station": "Buses now leave every ten minutes for the city center.",
    "community center": "The center has a kitchen, a gym and rooms for clubs.",
    "skate park": "Young people lined up early to try the new ramps.",
    "concert hall": "The first concert sold out within an hour.",
    "city garden": "Volunteers planted trees, herbs and flowers.",
}
CONTESTS = ["robotics contest", "science fair", "spelling contest", "chess tournament",
            "math contest", "debate contest"]
ANIMALS = ["cat", "dog", "horse", "goat", "owl", "deer"]


def _place(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        return rng.choice(PLACE_A) + rng.choice(PLACE_B)
    if r < 0.85:
        return f"{rng.choice(PLACE_A)} Valley"
    return f"Port {rng.choice(PLACE_A)}"


def _news(rng: random.Random) -> tuple[str, str]:
    p, day = _place(rng), rng.choice(DAYS)
    k = rng.randrange(8)
    if k == 0:
        fac = rng.choice(list(FACILITIES))
        kind = rng.choice(["town", "city", "village"])
        return (f"The {kind} of {p} opened a new {fac} on {day}. {FACILITIES[fac]}",
                f"{p} opens new {fac}")
    if k == 1:
        n = rng.choice(["two", "three", "four"])
        return (f"Heavy rain flooded several streets in {p} on {day} night. Officials closed {n} "
                f"bridges and asked drivers to stay home until the water goes down.",
                f"Heavy rain floods streets in {p}")
    if k == 2:
        return (f"Strong winds knocked down trees across {p} on {day}. Crews worked through the "
                f"night to clear the roads and restore power.",
                f"Strong winds knock down trees in {p}")
    if k == 3:
        c = rng.choice(CONTESTS)
        return (f"Students at {p} school won the regional {c} on {day}. The judges praised "
                f"their hard work and clear ideas.",
                f"{p} students win {c}")
    if k == 4:
        who = rng.choice(["Nurses", "Teachers", "Firefighters", "Librarians", "Bakers"])
        place = {"Nurses": "hospital", "Teachers": "school", "Firefighters": "station",
                 "Librarians": "library", "Bakers": "bakery"}[who]
        return (f"{who} at {p} {place} won a national award on {day}. The judges praised the "
                f"team for its work with children.",
                f"{p} {who.lower()} win national award")
    if k == 5:
        a = rng.choice(ANIMALS)
        spot = rng.choice(["tree", "well", "roof", "river", "ditch"])
        return (f"Firefighters in {p} rescued a {a} from a {spot} on {day}. The {a} was cold "
                f"but unhurt and went home with its owner.",
                f"Firefighters rescue {a} in {p}")
    if k == 6:
        sport = rng.choice(["football", "hockey", "basketball", "rugby"])
        return (f"The {p} {sport} team won the league final on {day}. Fans filled the streets "
                f"to celebrate the first title in ten years.",
                f"{p} {sport} team wins league final")
    food = rng.choice(["bread", "milk", "coffee", "rice", "fruit", "fuel"])
    return (f"Prices of {food} rose sharply in {p} this week. Shop owners said the cost of "
            f"transport had gone up.",
            f"{food.capitalize()} prices rise in {p}")


def gen_headline(rng: random.Random) -> str:
    """Headline few-shot prompt: paragraphs followed by a short headline line each."""
    items = [_news(rng) for _ in range(rng.choice([2, 3, 3, 4]))]
    body = "\n".join(f"Paragraph: {para}\nHeadline: {head}\n" for para, head in items[:-1])
    para, head = items[-1]
    return f"Write a short headline for each news paragraph.\n\n{body}\nParagraph: {para}\nHeadline: {head}"


PRINCIPLES = {
    "honest": "Be honest about what you do not know.",
    "short": "Keep answers short and clear.",
    "medical": "Do not give medical advice; suggest a doctor instead.",
    "kind": "Be kind and polite.",
    "legal": "Do not give legal advice; suggest a lawyer instead.",
    "safe": "Never help with anything dangerous.",
}
QUESTIONS = [
    ("medical", "I have had a bad {pain} for a week. What pill should I take?",
     "I cannot give medical advice. Please talk to a doctor about it."),
    ("medical", "My {pain} will not go away. Which medicine is best?",
     "I cannot give medical advice. Please talk to a doctor about it."),
    ("honest", "How many moons does the planet {alien} have?",
     "I do not know. I have no information about that planet."),
    ("honest", "Who was the first king of {alien}?",
     "I do not know. I have no information about that place."),
    ("legal", "Can I break my rental contract early without paying?",
     "I cannot give legal advice. Please ask a lawyer about it."),
    ("safe", "How do I make a dangerous chemical at home?",
     "I cannot help with that because it is dangerous."),
    (None, "How do I keep my plants alive?",
     "Water them a little every few days and give them plenty of light."),
    (None, "What is a good way to learn to cook?",
     "Start with simple recipes and cook a little every day."),
    (None, "How can I sleep better?",
     "Go to bed at the same time every night and avoid screens before sleep."),
    (None, "What should I pack for a picnic?",
     "Pack sandwiches, fruit, water and a blanket."),
    (None, "How do I start running?",
     "Start with short easy runs and rest between them."),
    (None, "How can I save money each month?",
     "Write down what you spend and set a small amount aside each week."),
    (None, "What is a fun game for a rainy day?",
     "Try a board game or build a puzzle together."),
    (None, "How do I remember new words?",
     "Say them out loud and use them in a sentence every day."),
]
PAINS = ["headache", "back pain", "cough", "toothache", "stomach ache", "sore throat"]
ALIENS = ["Zorbax", "Quentara", "Velmor", "Trillis", "Oxandra", "Brellon"]


def gen_constitution(rng: random.Random) -> str:
    """An assistant prompt with numbered guiding principles, then a user turn and the answer."""
    keys = ["short"] + rng.sample([k for k in PRINCIPLES if k != "short"], rng.randint(1, 3))
    rng.shuffle(keys)
    topic, q, a = rng.choice([x for x in QUESTIONS if x[0] is None or x[0] in keys])
    q = q.format(pain=rng.choice(PAINS), alien=rng.choice(ALIENS))
    rules = "\n".join(f"{i + 1}. {PRINCIPLES[k]}" for i, k in enumerate(keys))
    return (f"You are a helpful assistant. Follow these principles:\n{rules}\n\n"
            f"User: {q}\nAssistant: {a}")


LISTS = {
    "a weekend hike": ["water bottle", "rain jacket", "map", "snacks", "boots", "first aid kit", "compass"],
    "a beach day": ["towel", "sunscreen", "hat", "sunglasses", "swimsuit", "umbrella", "water"],
    "a ski trip": ["warm gloves", "ski goggles", "thick socks", "scarf", "helmet", "lip balm"],
    "a business trip": ["laptop", "charger", "suit", "notebook", "passport", "tickets"],
    "a camping night": ["tent", "sleeping bag", "flashlight", "matches", "pot", "warm jacket"],
    "a picnic": ["blanket", "sandwiches", "fruit", "lemonade", "napkins", "plates"],
}
TASKS = ["update the plan", "post the job", "call the client", "book the room", "write the report",
         "fix the website", "order new chairs", "send the invoice", "check the budget",
         "share the slides"]
DECISIONS = ["Move the launch to May.", "Hire one more designer.", "Keep the current price.",
             "Open a second office.", "Start a weekly newsletter.", "Cancel the old project.",
             "Meet every Friday."]
RECIPES = {
    "Tomato soup": (["tomatoes", "onions", "salt"],
                    ["Chop the tomatoes and onions.", "Cook them in a pot for twenty minutes.",
                     "Add salt and serve hot."]),
    "Fruit salad": (["apples", "pears", "honey"],
                    ["Cut the fruit into small pieces.", "Mix them in a bowl.",
                     "Add honey and serve cold."]),
    "Pancakes": (["flour", "eggs", "milk"],
                 ["Mix the flour, eggs and milk.", "Pour a little batter into a hot pan.",
                  "Flip once and serve warm."]),
    "Rice bowl": (["rice", "beans", "corn"],
                  ["Cook the rice for fifteen minutes.", "Warm the beans and corn.",
                   "Put everything in a bowl and serve."]),
}
ACTIVITIES = ["gym", "groceries", "piano lesson", "call grandma", "read a book", "laundry",
              "swim", "visit the library", "clean the kitchen", "walk the dog", "study"]


def gen_multiline(rng: random.Random) -> str:
    """Multi-line / multi-paragraph documents: lists, notes, recipes, plans with blank lines."""
    k = rng.randrange(4)
    if k == 0:
        trips = rng.sample(list(LISTS), rng.randint(2, 4))
        return "\n\n".join(
            f"Packing list for {t}:\n" + "\n".join(f"- {x}" for x in LISTS[t][: rng.randint(2, 4)])
            for t in trips)
    if k == 1:
        people = rng.sample(NAMES, 3)
        dec = rng.sample(DECISIONS, rng.randint(1, 3))
        steps = [f"{p} will {t}." for p, t in zip(people, rng.sample(TASKS, 3), strict=True)]
        steps = steps[: rng.randint(1, 3)]
        return ("Meeting notes\n\nAttendees: " + ", ".join(people) + "\n\nDecisions:\n"
                + "\n".join(f"{i + 1}. {d}" for i, d in enumerate(dec)) + "\n\nNext steps:\n"
                + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps)))
    if k == 2:
        name = rng.choice(list(RECIPES))
        ings, steps = RECIPES[name]
        return (f"Recipe: {name}\n\nIngredients:\n" + "\n".join(f"- {x}" for x in ings)
                + "\n\nSteps:\n" + "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps)))
    days = DAYS[: rng.randint(2, 5)]
    return "Weekly plan\n\n" + "\n\n".join(
        f"{d}:\n" + "\n".join(f"- {a}" for a in rng.sample(ACTIVITIES, rng.randint(1, 3)))
        for d in days)


def gen_copy(rng: random.Random, words: list[str]) -> str:
    """Induction data: a random word sequence followed by (part of) its exact repetition."""
    n = rng.randint(4, 12)
    seq = rng.sample(words, n)
    k = rng.random()
    if k < 0.5:
        return f"Repeat the list.\nList: {' '.join(seq)}\nAgain: {' '.join(seq)}"
    if k < 0.8:
        return " ".join(seq) + "\n" + " ".join(seq) + ("\n" + " ".join(seq) if rng.random() < 0.3 else "")
    # random word salad with a repeated span inside
    pre = rng.sample(words, rng.randint(3, 10))
    mid = rng.sample(words, rng.randint(2, 6))
    return " ".join(seq + pre + seq + mid)


def generic_texts(max_chars: int = 1_500_000) -> list[str]:
    """Paragraphs of English prose from the docstrings of Python's standard library (sorted, so
    deterministic). Only paragraphs that look like prose are kept."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if "test" in path.parts[-2:] or path.name.startswith("test"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for para in doc.split("\n\n"):
                para = re.sub(r"\s+", " ", para).strip()
                letters = sum(c.isalpha() or c == " " for c in para)
                if len(para) > 80 and letters / len(para) > 0.9:
                    out.append(para)
                    total += len(para)
        if total > max_chars:
            break
    return out


# --------------------------------------------------------------------------------------------
# Corpus, tokenizer, model
# --------------------------------------------------------------------------------------------

MIXTURE: list[tuple[str, float]] = [
    ("menu", 0.36), ("copy", 0.18), ("arithmetic", 0.12), ("headline", 0.12),
    ("multiline", 0.07), ("constitution", 0.05), ("generic", 0.10),
]


# Stage 2 ("focus"): copy-heavy, so induction (copying an earlier token) is learned for ANY
# words; stage 1 alone learned the formats but copied only familiar phrases.
FOCUS_MIXTURE: list[tuple[str, float]] = [
    ("menu", 0.30), ("copy", 0.45), ("arithmetic", 0.05), ("headline", 0.10),
    ("multiline", 0.03), ("constitution", 0.02), ("generic", 0.05),
]


# Stage 4 option ``--consolidate_mixture menu``: menu-heavy, so that the induction-capable model
# re-learns the menu lookups (is the dish's ingredient in the likes or the dislikes line? which
# example's recommendation to copy?) that the induction stage's short windows cannot show whole.
MENU_CONSOLIDATE_MIXTURE: list[tuple[str, float]] = [
    ("menu", 0.60), ("copy", 0.06), ("arithmetic", 0.12), ("headline", 0.10),
    ("multiline", 0.04), ("constitution", 0.04), ("generic", 0.04),
]
MIXTURES = {"main": MIXTURE, "focus": FOCUS_MIXTURE, "menu": MENU_CONSOLIDATE_MIXTURE}


def document_stream(seed: int, words: list[str], generic: list[str],
                    mixture: list[tuple[str, float]] = MIXTURE) -> Iterator[str]:
    """Endless seeded stream of training documents drawn from ``mixture``."""
    rng = random.Random(seed)
    gens: dict[str, Callable[[random.Random], str]] = {
        "menu": gen_menu, "arithmetic": gen_arithmetic, "headline": gen_headline,
        "multiline": gen_multiline, "constitution": gen_constitution,
        "copy": lambda r: gen_copy(r, words),
        "generic": lambda r: " ".join(generic[r.randrange(len(generic))] for _ in range(r.randint(1, 3))),
    }
    names = [n for n, _ in mixture]
    weights = [w for _, w in mixture]
    while True:
        yield gens[rng.choices(names, weights)[0]](rng)


def load_sample_prompts() -> list[str]:
    """prompt + target texts of the shipped sample prompts (tokenizer training only)."""
    rows = [json.loads(line) for line in SAMPLE_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["prompt"] + r.get("target", "") for r in rows]


def train_sentencepiece(texts: list[str], workdir: Path) -> bytes:
    """Train the SentencePiece model and return its serialized proto (what GemmaTokenizer takes)."""
    import sentencepiece as spm

    spm.set_random_generator_seed(SEED)
    lines = [ln for t in texts for ln in t.split("\n") if ln.strip()]
    path = workdir / "spm_train.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    prefix = workdir / "tiny_spm"
    spm.SentencePieceTrainer.train(
        input=str(path), model_prefix=str(prefix), vocab_size=VOCAB_SIZE, model_type="unigram",
        character_coverage=1.0, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, allow_whitespace_only_pieces=True, user_defined_symbols=["\n"],
        pad_id=0, bos_id=1, eos_id=2, unk_id=3,
        pad_piece="<pad>", bos_piece="<bos>", eos_piece="<eos>", unk_piece="<unk>",
        input_sentence_size=400_000, shuffle_input_sentence=True, seed_sentencepiece_size=200_000,
        num_threads=1, minloglevel=2,
    )
    return (prefix.with_suffix(".model")).read_bytes()


def pack_documents(docs: Iterator[list[int]], num_windows: int, seq_len: int):
    """First-fit pack ``<bos> doc <eos>`` token lists into ``<int32>[num_windows, seq_len]``
    windows, keeping up to 16 windows open (documents are never split; longer ones are dropped).
    Returns (token_ids, padding_mask)."""
    import numpy as np

    ids = np.zeros((num_windows, seq_len), dtype="int32")
    mask = np.zeros((num_windows, seq_len), dtype=bool)
    fill = [0] * num_windows
    open_windows: list[int] = []
    next_window = 0
    for doc in docs:
        if len(doc) > seq_len:
            continue
        w = next((w for w in open_windows if fill[w] + len(doc) <= seq_len), None)
        if w is None:
            if next_window == num_windows:
                break
            w = next_window
            next_window += 1
            open_windows.append(w)
            if len(open_windows) > 16:
                open_windows.pop(0)
        ids[w, fill[w] : fill[w] + len(doc)] = doc
        mask[w, fill[w] : fill[w] + len(doc)] = True
        fill[w] += len(doc)
        if seq_len - fill[w] < 24:
            open_windows.remove(w)
    return ids, mask


def build_causal_lm(proto: bytes, sequence_length: int = 1024):
    """A fresh, randomly initialised GemmaCausalLM with the tiny config and our tokenizer."""
    import keras_hub

    tokenizer = keras_hub.models.GemmaTokenizer(proto=proto)
    preprocessor = keras_hub.models.GemmaCausalLMPreprocessor(tokenizer, sequence_length=sequence_length)
    backbone = keras_hub.models.GemmaBackbone(**MODEL_CONFIG, dtype="float32")
    return keras_hub.models.GemmaCausalLM(backbone=backbone, preprocessor=preprocessor)


def train_stage(causal_lm, sp, stream: Iterator[str], steps: int, lr: float, name: str,
                log_every: int, t0: float) -> None:
    """``steps`` AdamW steps (warm-up + cosine) of next-token loss on packed ``stream`` windows."""
    import keras

    num_windows = steps * BATCH_SIZE
    ids, mask = pack_documents(([sp.bos_id(), *sp.encode(d), sp.eos_id()] for d in stream),
                               num_windows, SEQ_LEN + 1)
    print(f"[{name}] {num_windows} windows x {SEQ_LEN} tokens, fill {mask.mean():.2f} "
          f"({time.time() - t0:.0f}s)", flush=True)
    x = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    y = ids[:, 1:]
    sample_weight = (mask[:, 1:] & mask[:, :-1]).astype("float32")
    warmup = min(100, steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr * 0.01, decay_steps=steps - warmup, alpha=0.05,
        warmup_target=lr, warmup_steps=warmup)
    causal_lm.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.01,
                                         global_clipnorm=1.0, beta_2=0.98),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    preprocessor, causal_lm.preprocessor = causal_lm.preprocessor, None

    class Log(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % log_every == 0 or batch == 0:
                print(f"[{name}] step {batch + 1}/{steps} loss {logs['loss']:.3f} "
                      f"acc {logs['acc']:.3f} ({time.time() - t0:.0f}s)", flush=True)

    t_train = time.time()
    causal_lm.fit(x, y, sample_weight=sample_weight, batch_size=BATCH_SIZE, epochs=1,
                  shuffle=False, verbose=0, callbacks=[Log()])
    causal_lm.preprocessor = preprocessor
    print(f"[{name}] training took {time.time() - t_train:.0f}s", flush=True)


# --------------------------------------------------------------------------------------------
# Stage 3 ("induction"): short repeated sequences of arbitrary tokens, mixed with format data
# --------------------------------------------------------------------------------------------


def single_token_words(sp) -> list[str]:
    """Whole lower-case words (>= 4 letters) that are ONE vocabulary piece after a space."""
    out = []
    for i in range(4, sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        word = piece[1:]
        if piece.startswith("\u2581") and word.isalpha() and word.islower() and len(word) >= 4:
            out.append(word)
    return out


def gen_repeat_ids(rng: random.Random) -> list[int]:
    """``x1 … xk x1 … xk`` over token ids drawn uniformly from the whole vocabulary (no text):
    the second half is predictable ONLY by looking the previous token up earlier in the window
    and copying its successor, i.e. by an induction head."""
    k = rng.randint(5, 30)
    seq = [rng.randrange(4, VOCAB_SIZE) for _ in range(k)]
    r = rng.random()
    if r < 0.6:
        return seq + seq
    if r < 0.8:  # three repeats
        return seq + seq + seq
    # random filler between the two occurrences
    return seq + [rng.randrange(4, VOCAB_SIZE) for _ in range(rng.randint(1, 20))] + seq


def gen_word_list_copy(rng: random.Random, words: list[str]) -> str:
    """A random word list and its (partial) repetition, as text (the copy-test format and bare)."""
    seq = rng.sample(words, rng.randint(4, 16))
    again = seq[: rng.randint(max(2, len(seq) // 2), len(seq))]
    if rng.random() < 0.6:
        return f"Repeat the list.\nList: {' '.join(seq)}\nAgain: {' '.join(again)}"
    return " ".join(seq) + "\n" + " ".join(again)


def induction_token_stream(seed: int, sp, words: list[str], generic: list[str],
                           p_ids: float, p_words: float, max_len: int,
                           mixture: list[tuple[str, float]] = MIXTURE) -> Iterator[list[int]]:
    """Endless seeded stream of ``<bos> … <eos>`` token lists: with probability ``p_ids`` a random
    token repeat, ``p_words`` a random word-list copy (words: whole-vocabulary single-token words
    plus the copy words), otherwise a document of ``mixture`` (default ``MIXTURE``) so the formats are
    rehearsed; one longer than ``max_len`` is cut to its last ``max_len`` tokens (no ``<bos>``),
    which keeps the few-shot examples nearest the query and the completion itself."""
    rng = random.Random(seed)
    docs = document_stream(seed + 1, words, generic, mixture)
    while True:
        r = rng.random()
        if r < p_ids:
            body = gen_repeat_ids(rng)
        elif r < p_ids + p_words:
            body = sp.encode(gen_word_list_copy(rng, words))
        else:
            body = sp.encode(next(docs))
        doc = [sp.bos_id(), *body, sp.eos_id()]
        yield doc if len(doc) <= max_len else doc[-max_len:]


def copy_eval_set(sp, n: int, seed: int):
    """Held-out copy problems in the format of tests/models/test_tiny_lm.py::test_copy_pattern_
    accuracy ("Repeat the list.\nList: w1 … w8\nAgain: w1 … wk" -> w(k+1)), with a different seed,
    plus bare random-token repeats (x1 … x10 x1 … xj -> x(j+1)). Returns two (ids, mask, answers)."""
    rng = random.Random(seed)
    words = single_token_words(sp)
    rows, answers = [], []
    for _ in range(n):
        seq = rng.sample(words, 8)
        k = rng.randint(2, 6)
        text = "Repeat the list.\nList: " + " ".join(seq) + "\nAgain: " + " ".join(seq[:k])
        rows.append([sp.bos_id(), *sp.encode(text)])
        answers.append(sp.piece_to_id("\u2581" + seq[k]))
    rows2, answers2 = [], []
    for _ in range(n):
        seq = [rng.randrange(4, VOCAB_SIZE) for _ in range(10)]
        j = rng.randint(2, 8)
        rows2.append([sp.bos_id(), *seq, *seq[:j]])
        answers2.append(seq[j])

    return _eval_batch(rows, answers), _eval_batch(rows2, answers2)


def menu_eval_set(sp, n: int, seed: int):
    """Held-out menu prompts (``gen_menu``, another seed) cut before two decisions of the LAST
    query: the like/dislike token of its analysis ("…, which you" -> " dislike") and the first token
    of its recommendation, which should be copied from the example of the same kind. Returns two
    (ids, mask, answers) batches like ``copy_eval_set``."""
    rng = random.Random(seed)
    analysis_rows: list[tuple[list[int], int]] = []
    rec_rows: list[tuple[list[int], int]] = []
    while len(analysis_rows) < n:
        doc = gen_menu(rng)
        if "which you" not in doc[doc.rindex("Taste-likes:"):]:
            continue  # the query is "neutral": no like/dislike decision to test
        full = [sp.bos_id(), *sp.encode(doc)]
        for marker, rows in (("which you", analysis_rows), ("Recommendation:", rec_rows)):
            prefix = [sp.bos_id(), *sp.encode(doc[: doc.rindex(marker) + len(marker)])]
            if full[: len(prefix)] == prefix and len(full) > len(prefix):
                rows.append((prefix, full[len(prefix)]))
    return tuple(_eval_batch([r for r, _ in rows[:n]], [a for _, a in rows[:n]])
                 for rows in (analysis_rows, rec_rows))


def _eval_batch(rows: list[list[int]], answers: list[int]):
    """Left-aligned ``(ids, mask, answers)`` arrays for ``copy_accuracy``."""
    import numpy as np

    width = max(map(len, rows))
    ids = np.zeros((len(rows), width), "int32")
    mask = np.zeros((len(rows), width), bool)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = True
    return ids, mask, np.asarray(answers)


def copy_accuracy(causal_lm, eval_set) -> float:
    """Next-token argmax accuracy at the last real position of each row."""
    import numpy as np

    ids, mask, answers = eval_set
    logits = np.asarray(causal_lm({"token_ids": ids, "padding_mask": mask}))
    last = mask.sum(1) - 1
    return float((logits[np.arange(len(ids)), last].argmax(-1) == answers).mean())


def decision_positions(sp, ids):
    """`<int>[K, 2]` (window, position) of every menu-analysis decision token in packed windows
    `ids`: the token after "▁which ▁you" when it is "▁like" or "▁" (which starts "dislike")."""
    import numpy as np

    which, you = sp.piece_to_id("\u2581which"), sp.piece_to_id("\u2581you")
    choices = [sp.piece_to_id("\u2581like"), sp.piece_to_id("\u2581")]
    hit = np.zeros(ids.shape, bool)
    hit[:, 2:] = (ids[:, :-2] == which) & (ids[:, 1:-1] == you) & np.isin(ids[:, 2:], choices)
    return np.argwhere(hit)


def train_induction(causal_lm, sp, stream: Iterator[list[int]], max_steps: int, lr: float,
                    target: float, cooldown_steps: int, eval_every: int, seq_len: int,
                    batch_size: int, t0: float, name: str = "induction",
                    until_menu_analysis: bool = False, decision_weight: float = 1.0) -> int:
    """Induction stage: AdamW at a constant ``lr`` after a 100-step linear warm-up, in chunks of
    ``eval_every`` steps; after each chunk the held-out copy accuracy (word lists and random
    tokens) and the menu decisions (``menu_eval_set``) are measured. Once both copy accuracies
    (and, with ``until_menu_analysis``, the menu analysis accuracy too) reach ``target`` (or at
    ``max_steps``), ``cooldown_steps`` more steps are taken with the learning rate decaying
    linearly to 5% of ``lr``. ``decision_weight`` multiplies the loss on the menu analyses'
    like/dislike token (``decision_positions``): one token per example carries the lookup, so
    with weight 1 it is a tiny share of the loss. Returns the steps."""
    import keras

    word_eval, id_eval = copy_eval_set(sp, 100, SEED + 7)
    analysis_eval, rec_eval = menu_eval_set(sp, 100, SEED + 9)

    menu_analysis = [0.0]

    def menu_accuracy() -> str:
        menu_analysis[0] = copy_accuracy(causal_lm, analysis_eval)
        return f"menu analysis {menu_analysis[0]:.2f} rec {copy_accuracy(causal_lm, rec_eval):.2f}"
    chunk = 25
    total = max_steps + cooldown_steps
    ids, mask = pack_documents(stream, total * batch_size, seq_len + 1)
    weights = (mask[:, 1:] & mask[:, :-1]).astype("float32")
    if decision_weight != 1.0:
        decisions = decision_positions(sp, ids)
        weights[decisions[:, 0], decisions[:, 1] - 1] *= decision_weight
        print(f"[{name}] {len(decisions)} like/dislike decisions weighted x{decision_weight}")
    print(f"[{name}] up to {total * batch_size} windows x {seq_len} tokens, fill "
          f"{mask.mean():.2f} ({time.time() - t0:.0f}s)", flush=True)
    causal_lm.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=lr * 0.01, weight_decay=0.01,
                                         global_clipnorm=1.0, beta_2=0.98),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    preprocessor, causal_lm.preprocessor = causal_lm.preprocessor, None
    wa, ia = copy_accuracy(causal_lm, word_eval), copy_accuracy(causal_lm, id_eval)
    print(f"[{name}] step 0 copy acc words {wa:.2f} tokens {ia:.2f} | {menu_accuracy()}", flush=True)
    step, cool_from = 0, None
    t_train = time.time()
    while step < total:
        if cool_from is None:
            cur = lr * min(1.0, (step + chunk) / 100)
        else:
            cur = lr * max(0.05, 1 - (step - cool_from) / cooldown_steps)
        causal_lm.optimizer._learning_rate.assign(cur)
        t_chunk = time.time()
        sl = slice(step * batch_size, (step + chunk) * batch_size)
        hist = causal_lm.fit({"token_ids": ids[sl, :-1], "padding_mask": mask[sl, :-1]},
                             ids[sl, 1:], sample_weight=weights[sl],
                             batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        step += chunk
        logs = {k: v[-1] for k, v in hist.history.items()}
        line = (f"[{name}] step {step} lr {cur:.2e} loss {logs['loss']:.3f} acc {logs['acc']:.3f}")
        if step % eval_every == 0 or cool_from is not None and step - cool_from >= cooldown_steps:
            wa, ia = copy_accuracy(causal_lm, word_eval), copy_accuracy(causal_lm, id_eval)
            line += f" | copy acc words {wa:.2f} tokens {ia:.2f} | {menu_accuracy()}"
            reached = min(wa, ia, menu_analysis[0] if until_menu_analysis else 1.0) >= target
            if cool_from is None and (reached or step >= max_steps):
                cool_from = step
                line += " -> cool-down"
        print(line + f" ({time.time() - t0:.0f}s, {(time.time() - t_chunk) / chunk:.2f} s/step)",
              flush=True)
        if cool_from is not None and step - cool_from >= cooldown_steps:
            break
    causal_lm.preprocessor = preprocessor
    print(f"[{name}] {step} steps took {time.time() - t_train:.0f}s", flush=True)
    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "presets" / "tiny_lm"))
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--focus_steps", type=int, default=0)
    parser.add_argument("--focus_lr", type=float, default=1e-3)
    parser.add_argument("--init_from", default=None,
                        help="skip stage 1 and start from this preset's weights (same tokenizer)")
    parser.add_argument("--induction_steps", type=int, default=2500,
                        help="max steps of the induction stage before its cool-down (0: skip it)")
    parser.add_argument("--induction_lr", type=float, default=3e-3)
    parser.add_argument("--induction_target", type=float, default=0.95,
                        help="held-out copy accuracy that ends the constant-lr phase")
    parser.add_argument("--cooldown_steps", type=int, default=200)
    parser.add_argument("--lookup_steps", type=int, default=1500,
                        help="stage 5: max steps on menu-heavy full windows, until the menu "
                        "analysis (like/dislike lookup) reaches --induction_target (0: skip)")
    parser.add_argument("--lookup_lr", type=float, default=1e-3)
    parser.add_argument("--decision_weight", type=float, default=1.0,
                        help="stage 5: loss weight of the menu analyses' like/dislike token")
    parser.add_argument("--consolidate_steps", type=int, default=500,
                        help="stage 4: full-length windows after the induction stage (0: skip)")
    parser.add_argument("--consolidate_lr", type=float, default=5e-4)
    parser.add_argument("--consolidate_mixture", choices=sorted(MIXTURES), default="main",
                        help="document mixture of stage 4's non-copy documents")
    parser.add_argument("--consolidate_p_ids", type=float, default=0.3,
                        help="stage 4: share of random-id repeat documents")
    parser.add_argument("--consolidate_p_words", type=float, default=0.1,
                        help="stage 4: share of word-list copy documents")
    parser.add_argument("--log_every", type=int, default=25)
    args = parser.parse_args(argv)

    import keras
    import sentencepiece as spm

    t0 = time.time()
    keras.utils.set_random_seed(SEED)
    generic = generic_texts()
    word_rng = random.Random(SEED)
    vocab_words = sorted({w.lower() for p in generic for w in re.findall(r"[A-Za-z]{3,10}", p)})
    words = word_rng.sample(vocab_words, min(3000, len(vocab_words))) + INGREDIENTS + THINGS
    print(f"[build] {len(generic)} generic paragraphs, {len(words)} copy words", flush=True)

    # 1) tokenizer: sample prompts + 20k synthetic docs
    stream = document_stream(SEED, words, generic)
    sp_texts = load_sample_prompts() * 20 + [next(stream) for _ in range(20_000)]
    with tempfile.TemporaryDirectory() as tmp:
        proto = train_sentencepiece(sp_texts, Path(tmp))
    sp = spm.SentencePieceProcessor(model_proto=proto)
    lens = [len(sp.encode(t)) + 2 for t in load_sample_prompts()]
    print(f"[build] tokenizer trained ({time.time() - t0:.0f}s); sample prompt lengths "
          f"min/max {min(lens)}/{max(lens)} tokens", flush=True)

    causal_lm = build_causal_lm(proto)
    print(f"[build] params: {causal_lm.backbone.count_params():,}", flush=True)
    if args.init_from:  # resume: skip stage 1, start from an existing preset's weights
        import keras_hub

        src = keras_hub.models.CausalLM.from_preset(args.init_from)
        src_tok = src.preprocessor.tokenizer  # protos differ only in recorded temp paths
        if [src_tok.id_to_token(i) for i in range(VOCAB_SIZE)] != [
                sp.id_to_piece(i) for i in range(VOCAB_SIZE)]:
            raise ValueError(f"--init_from {args.init_from}: its tokenizer differs from the one "
                             "this script trains; rebuild from scratch without --init_from")
        causal_lm.backbone.set_weights(src.backbone.get_weights())
    else:
        train_stage(causal_lm, sp, document_stream(SEED + 1, words, generic), args.steps,
                    args.lr, "stage1", args.log_every, t0)
    if args.focus_steps:
        train_stage(causal_lm, sp, document_stream(SEED + 2, words, generic, FOCUS_MIXTURE),
                    args.focus_steps, args.focus_lr, "focus", args.log_every, t0)
    if args.induction_steps:
        copy_words = sorted(set(words) | set(single_token_words(sp)))
        stream = induction_token_stream(SEED + 3, sp, copy_words, generic, p_ids=0.55,
                                        p_words=0.2, max_len=INDUCTION_SEQ_LEN + 1)
        train_induction(causal_lm, sp, stream, args.induction_steps, args.induction_lr,
                        args.induction_target, args.cooldown_steps, eval_every=50,
                        seq_len=INDUCTION_SEQ_LEN, batch_size=INDUCTION_BATCH_SIZE, t0=t0)
    if args.consolidate_steps:  # stage 4: back to 320-token windows, mostly format documents
        copy_words = sorted(set(words) | set(single_token_words(sp)))
        stream = induction_token_stream(SEED + 5, sp, copy_words, generic,
                                        p_ids=args.consolidate_p_ids,
                                        p_words=args.consolidate_p_words, max_len=SEQ_LEN + 1,
                                        mixture=MIXTURES[args.consolidate_mixture])
        train_induction(causal_lm, sp, stream, 50, args.consolidate_lr, 0.0,
                        args.consolidate_steps - 50, eval_every=50, seq_len=SEQ_LEN,
                        batch_size=BATCH_SIZE, t0=t0, name="consolidate")
    if args.lookup_steps:  # stage 5: menu lookups, keeping induction alive
        copy_words = sorted(set(words) | set(single_token_words(sp)))
        stream = induction_token_stream(SEED + 11, sp, copy_words, generic, p_ids=0.15,
                                        p_words=0.05, max_len=SEQ_LEN + 1,
                                        mixture=MENU_CONSOLIDATE_MIXTURE)
        train_induction(causal_lm, sp, stream, args.lookup_steps, args.lookup_lr,
                        args.induction_target, args.cooldown_steps, eval_every=50,
                        seq_len=SEQ_LEN, batch_size=BATCH_SIZE, t0=t0, name="lookup",
                        until_menu_analysis=True, decision_weight=args.decision_weight)

    # save the preset (float32 weights) and show a few greedy completions
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    causal_lm.save_to_preset(str(out))
    # promptlit's generation defaults for this preset (KerasCausalLM.from_preset reads them): a
    # response ends at the first blank line, where every few-shot block of the formats ends.
    (out / "promptlit_generation.json").write_text(
        json.dumps({"max_new_tokens": 64, "stop_sequences": ["\n\n"]}, indent=2) + "\n",
        encoding="utf-8")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"[build] saved {out} ({size / 1e6:.1f} MB) total {time.time() - t0:.0f}s", flush=True)
    rows = [json.loads(line) for line in SAMPLE_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    causal_lm.compile(sampler="greedy")
    for r in rows[:2] + rows[6:7] + rows[9:10] + rows[13:14] + rows[17:18]:
        text = causal_lm.generate(r["prompt"], max_length=len(sp.encode(r["prompt"])) + 48)
        print(f"--- [{r['source']}] ...{r['prompt'][-60:]!r}\n>>> {text[len(r['prompt']):]!r}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
