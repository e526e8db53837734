"""components."""
from promptlit.components.classification_results import (
    ClassificationInterpreter as ClassificationInterpreter,
)
from promptlit.components.confusion_matrix import (
    ConfusionMatrixInterpreter as ConfusionMatrixInterpreter,
)
from promptlit.components.curves import CurvesInterpreter as CurvesInterpreter
from promptlit.components.gradient_maps import GradientDotInput as GradientDotInput
from promptlit.components.gradient_maps import GradientNorm as GradientNorm
from promptlit.components.gradient_maps import IntegratedGradients as IntegratedGradients
from promptlit.components.lime import LIME as LIME
from promptlit.components.metrics import MulticlassMetrics as MulticlassMetrics
from promptlit.components.metrics import MulticlassPairedMetrics as MulticlassPairedMetrics
from promptlit.components.metrics import MultilabelMetrics as MultilabelMetrics
from promptlit.components.metrics import RegressionMetrics as RegressionMetrics
from promptlit.components.metrics import compute_metrics_table as compute_metrics_table
from promptlit.components.neighbors import NearestNeighbors as NearestNeighbors
from promptlit.components.pdp import PdpInterpreter as PdpInterpreter
from promptlit.components.projection import PCA as PCA
from promptlit.components.projection import UMAP as UMAP
from promptlit.components.regression_results import RegressionInterpreter as RegressionInterpreter
from promptlit.components.thresholder import Thresholder as Thresholder
