"""components."""
from promptlit.components.gradient_maps import GradientDotInput as GradientDotInput
from promptlit.components.gradient_maps import GradientNorm as GradientNorm
from promptlit.components.gradient_maps import IntegratedGradients as IntegratedGradients
from promptlit.components.lime import LIME as LIME
