"""Ready-made networks: the lecture's CNN examples (and, later, its recurrent models)."""
from .lecture_cnn import LECTURE_CNNS, lecture_cnn

__all__ = ["LECTURE_CNNS", "lecture_cnn"]
from .elman import ElmanNetwork, ElmanRun, LSTMNetwork  # noqa: E402

__all__ += ["ElmanNetwork", "ElmanRun", "LSTMNetwork"]
from .alarmwork import AlarmworkNet  # noqa: E402
from .cells import AdditiveCell, ElmanReLUCell, GateLSTMCell, ModifiedCell  # noqa: E402
__all__ += ["AlarmworkNet", "AdditiveCell", "ElmanReLUCell", "GateLSTMCell", "ModifiedCell"]
from .layered import LayeredNetwork, LayerValue  # noqa: E402
__all__ += ["LayeredNetwork", "LayerValue"]
