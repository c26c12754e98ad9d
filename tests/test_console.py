"""The console filter (gantrain.commands.console) as its own process: TensorFlow's start-up noise out,
everything else through, whatever CPU the suite runs on."""

from __future__ import annotations

import subprocess
import sys

# Lines TensorFlow writes before its log level applies, as they read on machines without a GPU;
# the oneDNN line is printed only on CPUs where oneDNN is on by default (AVX-512, AMX).
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796562497.648417    5072 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796562484.933538    4922 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "E0000 00:00:1796562488.428419    4922 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796562484.991993    4922 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
]
KEPT = [
    "gantrain: error: train.steps: must be >= 1, got 0",
    "E0000 00:00:1796562488.428419    4922 some_kernel.cc:1] a real error stays",
]


def filtered(text: str) -> str:
    """What the filter passes on of ``text``, byte for byte (no newline translation: a bar's \\r stays)."""
    return subprocess.run(
        [sys.executable, "-m", "gantrain.commands.console"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()


def test_the_filter_drops_tensorflow_s_start_up_noise_and_keeps_everything_else():
    lines = [NOISE[0], NOISE[1], KEPT[0], *NOISE[2:], KEPT[1], NOISE[1]]
    assert filtered("".join(line + "\n" for line in lines)) == "".join(line + "\n" for line in KEPT)


def test_the_unknown_attribute_error_of_keras_s_data_pipeline_is_dropped():
    """As TensorFlow writes it while Keras fits the MNIST feature classifier: one long E-line that
    reads like a failure (the runtime ignores the attribute), wrapped over several terminal lines."""
    node_def = (
        "E0000 00:00:1796574323.202100   27657 node_def_util.cc:682] NodeDef mentions attribute "
        "use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; "
        "signature=input_dataset:variant, other_arguments: -> handle:variant; attr=f:func; "
        "attr=Targuments:list(type),min=0; attr=output_types:list(type),min=1; attr=output_shapes:list(shape),min=1; "
        "attr=use_inter_op_parallelism:bool,default=true; attr=preserve_cardinality:bool,default=false; "
        'attr=force_synchronous:bool,default=false; attr=metadata:string,default=""> This may be expected if your '
        "graph generating binary is newer  than this binary. Unknown attributes will be ignored. "
        "NodeDef: {{node ParallelMapDatasetV2/_15}}"
    )
    assert filtered(f"{KEPT[0]}\n{node_def}\n{KEPT[1]}\n") == f"{KEPT[0]}\n{KEPT[1]}\n"


def test_a_progress_bar_s_partial_line_is_shown_before_its_newline():
    assert filtered("train:  50%|#####     | 2/4\rtrain: 100%") == "train:  50%|#####     | 2/4\rtrain: 100%"
