"""cnnsize import of an Ultralytics model YAML without ultralytics or torch: the scale's arithmetic against
parse_model's published figures (the YAMLs' own comments: yolov8n "3157200 parameters, 3157184 gradients"), and bad
input as one line with its place, exit 2. The figures against the built model: tests/test_yolo_zoo.py."""

from __future__ import annotations

import pytest

import cnnsize

# ultralytics 8.4.190's yolov8.yaml, its scales' comments giving each scale's parameters as ultralytics counts them
YOLOV8 = """\
nc: 80
scales:
  n: [0.33, 0.25, 1024] # YOLOv8n summary: 129 layers, 3157200 parameters, 3157184 gradients, 8.9 GFLOPS
  s: [0.33, 0.50, 1024] # YOLOv8s summary: 129 layers, 11166560 parameters, 11166544 gradients, 28.8 GFLOPS
  m: [0.67, 0.75, 768] # YOLOv8m summary: 169 layers, 25902640 parameters, 25902624 gradients, 79.3 GFLOPS
  l: [1.00, 1.00, 512] # YOLOv8l summary: 209 layers, 43691520 parameters, 43691504 gradients, 165.7 GFLOPS
  x: [1.00, 1.25, 512] # YOLOv8x summary: 209 layers, 68229648 parameters, 68229632 gradients, 258.5 GFLOPS
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 6, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]] # 5-P4/16
  - [-1, 6, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]] # 7-P5/32
  - [-1, 3, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]] # 9
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 3, C2f, [512]] # 12
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 3, C2f, [256]] # 15 (P3/8-small)
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]] # cat head P4
  - [-1, 3, C2f, [512]] # 18 (P4/16-medium)
  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]] # cat head P5
  - [-1, 3, C2f, [1024]] # 21 (P5/32-large)
  - [[15, 18, 21], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""


# ultralytics 8.4.190's yolo12.yaml (area attention, A2C2f), its scales' comments giving each one's parameters
YOLO12 = """\
nc: 80 # number of classes
scales: # model compound scaling constants, i.e. 'model=yolo12n.yaml' will call yolo12.yaml with scale 'n'
  n: [0.50, 0.25, 1024] # summary: 272 layers, 2,602,288 parameters, 2,602,272 gradients, 6.7 GFLOPs
  s: [0.50, 0.50, 1024] # summary: 272 layers, 9,284,096 parameters, 9,284,080 gradients, 21.7 GFLOPs
  m: [0.50, 1.00, 512] # summary: 292 layers, 20,199,168 parameters, 20,199,152 gradients, 68.1 GFLOPs
  l: [1.00, 1.00, 512] # summary: 488 layers, 26,450,784 parameters, 26,450,768 gradients, 89.7 GFLOPs
  x: [1.00, 1.50, 512] # summary: 488 layers, 59,210,784 parameters, 59,210,768 gradients, 200.3 GFLOPs
backbone:
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 2, C3k2, [256, False, 0.25]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 2, C3k2, [512, False, 0.25]]
  - [-1, 1, Conv, [512, 3, 2]] # 5-P4/16
  - [-1, 4, A2C2f, [512, True, 4]]
  - [-1, 1, Conv, [1024, 3, 2]] # 7-P5/32
  - [-1, 4, A2C2f, [1024, True, 1]] # 8
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 2, A2C2f, [512, False, -1]] # 11
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 2, A2C2f, [256, False, -1]] # 14
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 11], 1, Concat, [1]] # cat head P4
  - [-1, 2, A2C2f, [512, False, -1]] # 17
  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 8], 1, Concat, [1]] # cat head P5
  - [-1, 2, C3k2, [1024, True]] # 20 (P5/32-large)
  - [[14, 17, 20], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""


@pytest.mark.parametrize(("scale", "params", "gradients"), [
    ("n", 2602288, 2602272), ("s", 9284096, 9284080), ("m", 20199168, 20199152), ("l", 26450784, 26450768),
    ("x", 59210784, 59210768)])
def test_yolo12_scales_have_ultralytics_parameters(scale, params, gradients):
    """YOLO12's area attention (A2C2f, and its L/X residual scale) as ultralytics' own summary counts it."""
    a = cnnsize.from_yolo(YOLO12, scale, input_shape=(3, 320, 256)).analyze()
    assert (a.totals["params"], a.totals["trainable_params"]) == (params, gradients)


@pytest.mark.parametrize(("scale", "params", "gradients"), [
    ("n", 3157200, 3157184), ("s", 11166560, 11166544), ("m", 25902640, 25902624), ("l", 43691520, 43691504),
    ("x", 68229648, 68229632)])
def test_each_scale_has_ultralytics_parameters(scale, params, gradients):
    a = cnnsize.from_yolo(YOLOV8, scale, input_shape=(3, 320, 320)).analyze()
    assert (a.totals["params"], a.totals["trainable_params"]) == (params, gradients)
    assert a.layers[-1].output_shape == (84, 40 * 40 + 20 * 20 + 10 * 10)  # 4 + nc by the anchors of 3 levels


def test_the_scale_is_read_from_the_file_name_as_ultralytics_reads_it(tmp_path):
    (tmp_path / "yolov8.yaml").write_text(YOLOV8)
    a = cnnsize.from_yolo(tmp_path / "yolov8s.yaml", input_shape=(3, 320, 320)).analyze()
    assert a.totals["params"] == 11166560


@pytest.mark.parametrize(("change", "said"), [
    (("C2f, [128, True]]", "C2F, [128, True]]"), "unknown Ultralytics module 'C2F'; did you mean 'C2f'?"),
    (("Conv, [64, 3, 2]]", "Conv, [64, 3, 2, 1, 1, 1, True, 9]]"), "Conv takes 1 to 7 args, got 8"),
    (("[[-1, 6], 1, Concat", "[[-1, 60], 1, Concat"), "'from' 60 of row 11 is not an earlier row"),
    (("[-1, 1, Conv, [512, 3, 2]] # 5-P4/16", "[-1, 1, SCDown, [512, 3]] # 5-P4/16"), "SCDown takes 3 args, got 2"),
    (("[-1, 6, C2f, [512, True]]", "[-1, 6, A2C2F, [512, True]]"),
     "unknown Ultralytics module 'A2C2F'; did you mean 'A2C2f'?"),
    (("Detect, [nc]]", "Pose, [nc, [17, 4]]]"), "kpt_shape must be [keypoints, 2 or 3 values each], got [17, 4]"),
    (("nc: 80", "nc: 80\nactivation: __import__('os').system('true')"), "activation \"__import__('os')"),
])
def test_bad_yaml_is_one_line_with_its_place(change, said, tmp_path, cli):
    path = tmp_path / "yolov8n.yaml"
    path.write_text(YOLOV8.replace(*change))
    result = cli("import", str(path), "-o", str(tmp_path / "out.yaml"))
    assert result.returncode == 2 and said in result.stderr, result.stderr
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if change[1].split("\n")[-1] in text)
    assert f"yolov8n.yaml:{line}:" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.yaml").exists()


def test_the_written_spec_is_a_spec(tmp_path, cli):
    path = tmp_path / "yolov8n.yaml"
    path.write_text(YOLOV8)
    out = tmp_path / "spec.yaml"
    assert cli("import", str(path), "--input", "3x480x640", "-o", str(out)).returncode == 0
    a = cnnsize.analyze(str(out))
    assert a.totals["params"] == 3157200 and a.layers[-1].output_shape == (84, 60 * 80 + 30 * 40 + 15 * 20)


def test_reporting_a_yolo_yaml_as_a_spec_says_how_to_size_it(tmp_path, cli):
    """A model YAML given where a spec goes: one line saying it is Ultralytics' and what to run instead."""
    path = tmp_path / "yolov8n.yaml"
    path.write_text(YOLOV8)
    result = cli("report", str(path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "an Ultralytics model YAML" in result.stderr and "cnnsize import FILE.yaml" in result.stderr
