"""`lossdsl.plot`: the kind of x axis read from a program, the curves, the files written.

The curves come from the generated Keras loss (`call` plus `tf.GradientTape`),
so they are checked against closed forms: Huber and its gradient against e,
binary cross-entropy against p, softmax cross-entropy on logits [z, 0].
"""

from __future__ import annotations

import numpy as np
import pytest

import lossdsl
from lossdsl.plot import (
    KINDS,
    evaluate,
    infer_kind,
    legend_text,
    plot_losses,
    robust_limits,
    target_labels,
    x_range,
)

pytest.importorskip("matplotlib")
pytest.importorskip("tensorflow")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

BUNDLED = {
    "binary_crossentropy": "probability",
    "binary_crossentropy_from_logits": "logits",
    "binary_focal_crossentropy": "probability",
    "categorical_crossentropy": "probability",
    "categorical_crossentropy_from_logits": "logits",
    "categorical_focal_crossentropy": "probability",
    "categorical_generalized_cross_entropy": "probability",
    "categorical_hinge": "logits",
    "cosine_similarity": "probability",
    "dice": "probability",
    "hinge": "logits",
    "huber": "regression",
    "kl_divergence": "probability",
    "log_cosh": "regression",
    "mean_absolute_error": "regression",
    "mean_absolute_percentage_error": "positive",
    "mean_squared_error": "regression",
    "mean_squared_logarithmic_error": "positive",
    "penalized_absolute_error": "regression",
    "poisson": "positive",
    "poly1": "logits",
    "sparse_categorical_crossentropy": "probability",
    "sparse_categorical_crossentropy_from_logits": "logits",
    "squared_hinge": "logits",
    "tversky": "probability",
    "weighted_mean_squared_error": "regression",
}


def test_every_bundled_loss_has_an_expected_kind():
    assert set(BUNDLED) == set(lossdsl.library.names())
    assert set(BUNDLED.values()) == set(KINDS)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_kind_of_bundled_losses(name):
    assert infer_kind(lossdsl.library.compile(name)) == BUNDLED[name]


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("abs(e)*0.5*(1+abs(e))", "regression"),
        ("sqrt(e^2 + 1) - 1", "regression"),
        ("x = y_true - y_pred\nmean(x^2)", "regression"),
        ("-(y_true*log(y_pred) + (1-y_true)*log(1-y_pred))", "probability"),
        ("p = y_pred\n-y_true*log(p)", "probability"),
        ("(y_pred - y_true)^2 * (1 - y_pred)", "probability"),
        (
            "-(y_true*log(sigmoid(y_pred)) + (1-y_true)*log(1-sigmoid(y_pred)))",
            "logits",
        ),
        ("logsumexp(y_pred) - sum(y_true*y_pred)", "logits"),
        ("1 - sum(onehot(y_true) * y_pred)", "probability"),
        ("-sum(onehot(y_true) * log_softmax(y_pred))", "logits"),
        ("maximum(1 - where(y_true == 0, -1, 1) * y_pred, 0)", "logits"),
        ("(log1p(y_pred) - log1p(y_true))^2", "positive"),
        ("y_pred - y_true*log(y_pred + eps)", "positive"),
    ],
)
def test_kind_of_programs(source, kind):
    assert infer_kind(lossdsl.compile(source)) == kind


def test_a_changed_bundled_program_is_read_like_any_other():
    source = lossdsl.library.source("dice") + "\n"
    assert infer_kind(lossdsl.compile(source)) == "positive"


# ---------------------------------------------------------------- curves


def test_regression_curves_are_the_loss_against_e():
    (curve,) = evaluate(lossdsl.library.compile("huber"), "regression")
    e = curve.x
    assert curve.target is None and e[0] == -3.0 and e[-1] == 3.0
    np.testing.assert_allclose(
        curve.loss,
        np.where(abs(e) <= 1, 0.5 * e**2, abs(e) - 0.5),
        rtol=1e-5,
        atol=1e-6,
    )
    # y_pred = -e, so dL/dy_pred = -e inside the quadratic zone and -sign(e) outside.
    np.testing.assert_allclose(curve.gradient, np.clip(-e, -1, 1), rtol=1e-5, atol=1e-6)


def test_a_regression_axis_reaches_twice_the_largest_parameter():
    # A Wing loss with w = 10 changes branch at |e| = 10: on [-3, 3] one branch showed (a user test).
    wing = lossdsl.compile(
        "param w = 10\nparam eps = 2\na = abs(e)\nwhere(a < w, w*log(1 + a/eps), a - (w - w*log(1 + w/eps)))"
    )
    (curve,) = evaluate(wing, "regression")
    assert curve.x[0] == -20.0 and curve.x[-1] == 20.0 and 0.0 in curve.x
    a = abs(curve.x)
    expected = np.where(a < 10, 10 * np.log1p(a / 2), a - (10 - 10 * np.log1p(10 / 2)))
    np.testing.assert_allclose(curve.loss, expected, rtol=1e-5, atol=1e-5)
    huber = lossdsl.library.compile("huber")
    assert x_range([huber], "regression") == (-3.0, 3.0)  # delta = 1: the usual axis
    assert x_range([huber, wing], "regression") == (
        -20.0,
        20.0,
    )  # drawn together: one axis
    assert x_range([lossdsl.compile("param k = 1e6\nk * e^2")], "regression") == (
        -1000.0,
        1000.0,
    )
    assert x_range([wing], "logits") == (-6.0, 6.0)


def test_probability_curves_for_both_labels():
    one, zero = evaluate(lossdsl.library.compile("binary_crossentropy"), "probability")
    p = one.x
    assert (one.target, zero.target) == ("$y = 1$", "$y = 0$")
    assert 0 < p[0] < p[-1] < 1
    np.testing.assert_allclose(one.loss, -np.log(p), rtol=1e-4)
    np.testing.assert_allclose(zero.loss, -np.log1p(-p), rtol=1e-4)
    np.testing.assert_allclose(one.gradient, -1 / p, rtol=1e-3)
    np.testing.assert_allclose(zero.gradient, 1 / (1 - p), rtol=1e-3)


def test_two_class_programs_use_p_and_one_minus_p():
    one, zero = evaluate(
        lossdsl.library.compile("categorical_crossentropy"), "probability"
    )
    np.testing.assert_allclose(one.loss, -np.log(one.x), rtol=1e-4)
    np.testing.assert_allclose(zero.loss, -np.log1p(-zero.x), rtol=1e-4)
    # Class ids for `onehot` programs give the same curves.
    ids_one, ids_zero = evaluate(
        lossdsl.library.compile("sparse_categorical_crossentropy"), "probability"
    )
    np.testing.assert_allclose(ids_one.loss, one.loss, rtol=1e-4)
    np.testing.assert_allclose(ids_zero.loss, zero.loss, rtol=1e-4)


def test_two_class_logits_are_z_and_zero():
    one, zero = evaluate(
        lossdsl.library.compile("categorical_crossentropy_from_logits"), "logits"
    )
    z = one.x
    sigmoid = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(one.loss, np.logaddexp(0, -z), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.gradient, sigmoid - 1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(zero.gradient, sigmoid, rtol=1e-4, atol=1e-6)


def test_non_finite_values_are_left_out():
    (curve,) = evaluate(lossdsl.compile("-(1 - y_true)*log(y_pred)"), "regression")
    # y_true = 0 and y_pred = -e: log of 0 or of a negative number for e >= 0.
    assert np.isnan(curve.loss[curve.x >= 0]).all()
    assert np.isfinite(curve.loss[curve.x < 0]).all()


def test_class_ids_need_two_classes():
    spec = lossdsl.library.compile("sparse_categorical_crossentropy_from_logits")
    with pytest.raises(
        ValueError,
        match=r"reads class ids \(onehot\): plot it as probability or logits",
    ):
        evaluate(spec, "regression")


def test_a_list_of_three_values_is_plotted_per_column():
    # Two classes per row met the list's three columns (TensorFlow: incompatible shapes [201,2]
    # vs. [3]); a column of y_pred is broadcast against the list instead (found by a review).
    spec = lossdsl.compile(
        "where([0, 1, 0.5] != y_true or y_pred > 0, y_pred^2, y_pred)"
    )
    kind = infer_kind(spec)
    curves = evaluate(spec, kind)
    for curve in curves:
        assert curve.loss.shape == curve.x.shape and np.isfinite(curve.loss).all()
    with pytest.raises(
        ValueError,
        match=r"reads class ids \(onehot\) and a list of 3 values: it has no two-class plot",
    ):
        evaluate(
            lossdsl.compile("-sum(onehot(y_true) * log_softmax(y_pred * [1, 2, 3]))"),
            "logits",
        )


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        (
            "[0.3, 0.7, 0.1] * softmax(y_pred)",
            "logits",
            "softmax across a list of 3 values: it has no two-class plot",
        ),
        (
            "y_true * softmax(y_pred)",
            "regression",
            "softmax across classes: plot it as probability or logits",
        ),
        # a list of one value sets no width: it broadcasts along one column as along two
        (
            "y_true * softmax([2] * y_pred)",
            "regression",
            "softmax across classes: plot it as probability or logits",
        ),
        (
            "n = normalize(y_pred)\n-sum(y_true * n)",
            "positive",
            "normalize across classes: plot it as",
        ),
    ],
)
def test_a_vector_function_across_one_column_has_no_plot(source, kind, message):
    # One column of y_pred: its softmax is 1 everywhere (a flat curve, and Keras's warning of a
    # softmax over an axis of 1), its normalize is its sign (a review).
    with pytest.raises(ValueError, match=f"^FormulaLoss takes {message}"):
        evaluate(lossdsl.compile(source), kind)


@pytest.mark.parametrize(
    "source", ["s = softmax(y_pred)\nabs(e)", "sum(softmax(y_true) * abs(e))"]
)
def test_a_vector_function_the_plot_does_not_flatten_is_plotted(source):
    # One in a binding the loss does not read, or of y_true alone: plotted as before (a review)
    curves = evaluate(lossdsl.compile(source), "regression")
    assert all(
        np.ptp(curve.loss) > 1 and np.isfinite(curve.loss).all() for curve in curves
    )


def test_a_vector_function_across_a_list_is_plotted():
    # The list sets the width the softmax is taken across: a curve that moves.
    spec = lossdsl.compile("l = [1, 2, 3]\n-sum(y_true * log_softmax(l * y_pred))")
    at_one, at_zero = evaluate(spec, "logits")
    assert (
        at_one.target == "$y = 1$"
        and np.ptp(at_one.loss) > 10
        and np.isfinite(at_one.gradient).all()
    )
    assert (at_zero.loss == 0).all()  # y_true of 0


def test_robust_limits():
    line = np.linspace(-6, 6, 101)
    lo, hi = robust_limits([line])
    assert lo < -6 and hi > 6 and hi - lo < 13.5
    p = np.linspace(0.005, 0.995, 201)
    lo, hi = robust_limits([-1 / p, 1 / (1 - p)])
    assert -40 < lo < -5 and 5 < hi < 40
    lo, hi = robust_limits([np.zeros(5)])
    assert lo < 0 < hi
    assert robust_limits([np.full(3, np.nan)]) is None


# ---------------------------------------------------------------- legend


def test_the_line_styles_name_the_class_id_where_a_loss_reads_class_ids():
    # "y = 1" is the first class true, which for class ids is id 0 (a review read it as id 1)
    sparse = lossdsl.compile("-sum(onehot(y_true) * log(clip(y_pred, eps, 1)))")
    binary = lossdsl.compile("-(y_true * log(y_pred) + (1 - y_true) * log(1 - y_pred))")
    curves = [evaluate(spec, "probability", (0.01, 0.99)) for spec in (sparse, binary)]
    assert target_labels([sparse, binary], curves, two_classes=True) == [
        "$y = 1$ (class id 0)",
        "$y = 0$ (class id 1)",
    ]
    # ... and where the first curve, class id 0 true, is the probability p of the first class
    assert (
        curves[0][0].loss[-1] < curves[0][0].loss[0]
        and curves[0][1].loss[-1] > curves[0][1].loss[0]
    )
    assert target_labels([binary], curves[1:], two_classes=False) == [
        "$y = 1$",
        "$y = 0$",
    ]


def test_legend_shows_the_formula_after_the_name():
    spec = lossdsl.library.compile("mean_squared_error")
    assert legend_text(spec, "losses/mean_squared_error.loss", 600) == (
        r"mean_squared_error: $\left(y - \hat{y}\right)^{2}$",
        9.0,
    )
    assert legend_text(spec, "<-e>", 600) == (r"$\left(y - \hat{y}\right)^{2}$", 9.0)


def test_long_formulas_shrink_then_give_way_to_the_name():
    spec = lossdsl.library.compile("binary_focal_crossentropy")
    text, size = legend_text(spec, "binary_focal_crossentropy.loss", 680)
    assert text.startswith("binary_focal_crossentropy: $") and size == 7.0
    assert legend_text(spec, "binary_focal_crossentropy.loss", 100) == (
        "binary_focal_crossentropy",
        9.0,
    )


def test_the_kind_of_a_chain_of_maxima_is_found_without_comparing_them_again(
    monkeypatch,
):
    # `xreplace` rebuilt each shared `maximum` wherever it was read and compared its arguments
    # again: 13 links of `maximum(a, 1 - a)` on y_true took `lossdsl plot` minutes (a review)
    import sympy

    links = "".join(
        f"a{k} = maximum(a{k - 1}, 1 - a{k - 1}) + {k}\n" for k in range(1, 14)
    )
    spec = lossdsl.compile("a0 = y_true\n" + links + "(y_pred - a13)^2")
    of_e = lossdsl.compile("x = y_true - y_pred\nmaximum(x, 1 - x)^2")
    monkeypatch.setattr(
        sympy.Basic, "xreplace", lambda *args, **kwargs: pytest.fail("xreplace")
    )
    assert infer_kind(spec) == "positive"
    assert infer_kind(of_e) == "regression"


def test_a_formula_too_long_for_any_legend_gives_the_name_unparsed(monkeypatch):
    # Fourteen nested `erf(x) + x` (a program of 300 characters) are 390 KB of LaTeX: mathtext
    # took two minutes to measure what could never fit (a review)
    import matplotlib.mathtext

    program = (
        "x0 = y_pred\n"
        + "".join(f"x{k} = erf(x{k - 1}) + x{k - 1}\n" for k in range(1, 15))
        + "x14 + e^2"
    )
    spec = lossdsl.compile(program)
    assert len(spec.latex(inline=True)) > 100_000
    parsed = []
    monkeypatch.setattr(
        matplotlib.mathtext.MathTextParser,
        "parse",
        lambda *args, **kwargs: parsed.append(args),
    )
    assert legend_text(spec, "erf14.loss", 600) == ("erf14", 9.0)
    assert parsed == []


def test_a_dollar_in_a_file_name_is_text_in_the_legend():
    # `$\\frac{$.loss`: mathtext read the name as math and failed the plot (a review)
    spec = lossdsl.library.compile("mean_squared_error")
    assert legend_text(spec, "$\\frac{$.loss", 600) == (
        r"\$\frac{\$: $\left(y - \hat{y}\right)^{2}$",
        9.0,
    )


class _Unparsable:
    name = "Odd"

    def latex(self, **kwargs):
        return r"\begin{cases} 1 & x \end{cases}"


def test_formula_mathtext_cannot_parse_gives_the_name():
    assert legend_text(_Unparsable(), "odd.loss", 600) == ("odd", 9.0)
    assert legend_text(_Unparsable(), "<-e>", 600) == ("Odd", 9.0)


# ---------------------------------------------------------------- files


def test_png(tmp_path):
    out = plot_losses([lossdsl.library.compile("huber")], tmp_path / "huber.png")
    assert out == tmp_path / "huber.png"
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_svg_is_deterministic(tmp_path):
    specs = [
        lossdsl.library.compile(n) for n in ("mean_squared_error", "huber", "log_cosh")
    ]
    first = plot_losses(specs, tmp_path / "a.svg").read_text(encoding="utf-8")
    second = plot_losses(specs, tmp_path / "b.SVG").read_text(encoding="utf-8")
    assert first == second
    assert first.startswith("<?xml") and "<svg" in first
    assert "<dc:date>" not in first


def test_missing_folders_are_created(tmp_path):
    out = plot_losses(
        [lossdsl.compile("abs(e)")], tmp_path / "a" / "b" / "x.png", labels=["<-e>"]
    )
    assert out.is_file()


@pytest.mark.parametrize("name", ["plot.pdf", "plot", "plot.png.txt"])
def test_only_png_and_svg(tmp_path, name):
    with pytest.raises(ValueError, match=r"give a file name ending in \.png or \.svg"):
        plot_losses([lossdsl.compile("abs(e)")], tmp_path / name)
    assert not (tmp_path / name).exists()


def test_losses_of_different_kinds_need_a_kind(tmp_path):
    specs = [
        lossdsl.library.compile("huber"),
        lossdsl.library.compile("binary_crossentropy"),
    ]
    labels = ["huber.loss", "bce.loss"]
    with pytest.raises(
        ValueError,
        match=r"huber \(regression\), bce \(probability\); choose one with kind=",
    ):
        plot_losses(specs, tmp_path / "x.png", labels)
    assert plot_losses(specs, tmp_path / "x.png", labels, kind="probability").is_file()


def test_bad_arguments(tmp_path):
    spec = lossdsl.compile("abs(e)")
    with pytest.raises(ValueError, match="unknown kind 'margin'"):
        plot_losses([spec], tmp_path / "x.png", kind="margin")
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_losses([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 labels for 1 losses"):
        plot_losses([spec], tmp_path / "x.png", labels=["a", "b"])


def test_a_panel_with_no_finite_value_says_so(tmp_path, monkeypatch):
    # `log(y_pred - 10)` over the regression axis: NaN everywhere, beside a finite gradient
    # (`y_true / (y_pred - 10) + 1`); the loss panel was empty with no word (a review)
    import lossdsl.plot as plot_module

    figures = []
    monkeypatch.setattr(plot_module, "_save", lambda fig, output: figures.append(fig))
    spec = lossdsl.compile("log(y_pred - 10)*y_true + y_pred")
    plot_losses([spec], tmp_path / "x.png", kind="regression")
    loss_axes, gradient_axes = figures[0].axes
    assert [t.get_text() for t in loss_axes.texts] == [
        "the loss is not a finite number\nanywhere on this range"
    ]
    assert list(gradient_axes.texts) == []
    assert list(loss_axes.get_yticks()) == []
