"""Feature attributions of trained models (KnowIt's interpretation step), through Captum.

``options`` checks KnowIt's interpreter kwargs, ``selection`` picks the points, ``attribution``
runs Captum, ``fileformat`` owns the files, ``pictures`` draws them and ``run`` ties them
together. Torch and Captum load only when an interpretation runs.
"""

from knowit_app.interpret.options import (
    METHODS,
    InterpretOptions,
    from_knowit_kwargs,
    make_options,
)

__all__ = ["METHODS", "InterpretOptions", "from_knowit_kwargs", "make_options"]
