"""Windows naming rules shared with render."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vmprep.render.paths import path_problem
from vmprep.spec.windows import setupcomplete_path_problem

PATHS = st.one_of(
    st.text(alphabet=st.sampled_from(list('C:\\ab .()+~-_%!&^"é,\x01/')), max_size=30),
    st.builds(
        lambda d, parts: d + ":\\" + "\\".join(parts),
        st.sampled_from(["C", "D", "c", "1"]),
        st.lists(st.text(alphabet=st.sampled_from(list("ab .()-~é%")), max_size=6), max_size=4),
    ),
)


@settings(max_examples=500)
@given(PATHS)
def test_validate_accepts_exactly_the_setupcomplete_paths_render_accepts(path):
    assert (setupcomplete_path_problem(path) is None) == (path_problem(path) is None)
