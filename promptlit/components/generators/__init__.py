"""generators."""
from promptlit.components.generators.ablation_flip import AblationFlip as AblationFlip
from promptlit.components.generators.hotflip import HotFlip as HotFlip
from promptlit.components.generators.scrambler import Scrambler as Scrambler
from promptlit.components.generators.word_replacer import WordReplacer as WordReplacer
