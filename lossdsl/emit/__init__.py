"""Stage 5: the emitters. `keras.emit_keras` prints a standalone Keras module; `latex.emit_latex` prints LaTeX.

The submodules are imported on demand, so importing `lossdsl` stays cheap.
"""
