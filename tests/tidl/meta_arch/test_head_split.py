"""Grouping a head's boxes per scale (one Caffe min_size each) and splitting its convs without changing its output."""

import numpy as np
import pytest

from edgezoo.core.errors import RecipeError
from edgezoo.tidl.meta_arch.head_split import scale_groups

R2 = np.sqrt(2)


def test_two_min_sizes_give_two_groups_with_their_max_and_ratio_boxes():
    # 10 px square + its 2:1, then 20 px square, sqrt(20 * 30) px square (20's max_size), 20's 1:2
    sizes = np.array([[10, 10], [10 * R2, 10 / R2], [20, 20], [600 ** 0.5, 600 ** 0.5], [20 / R2, 20 * R2]])
    assert scale_groups(sizes) == [[0, 1], [2, 3, 4]]


def test_one_scale_is_left_whole_even_with_clamped_boxes():
    # a min square, a max square, and 2:1 boxes clamped to the image (area changed): prior_fit's business
    assert scale_groups(np.array([[100, 100], [150, 150], [120, 70.7]])) == [[0, 1, 2]]


def test_a_box_of_no_scale_is_a_clear_error():
    with pytest.raises(RecipeError, match=r"boxes \[2\].*no aspect ratio"):
        scale_groups(np.array([[10, 10], [20, 20], [5, 7], [20 * R2, 20 / R2]]))
