"""The examples under each `v2r COMMAND --help`: the command's place in the workflow (what comes before, what
after) and the options people reach for first. Kept apart from the command modules, which parse and dispatch."""

from __future__ import annotations

import textwrap

EXAMPLES = {
    "demo": """\
        v2r demo                                    # demo data -> train -> score -> plots -> eval in ./v2r-demo
        v2r demo --tasks pendulum --steps 300       # one task, shorter training: a quick look""",
    "demo-data": """\
        v2r demo-data data/ --tasks pendulum        # data/pendulum/{train,test_expert,test_fail,test_partial}
        MUJOCO_GL=egl v2r demo-data data/ --tasks reach --train-views topview behindGripper   # + train_views/
        v2r train data/pendulum/train --out models/pendulum      # next: a reward model from the expert videos""",
    "train": """\
        v2r train my_videos/ --out models/mytask                 # every video under my_videos/ is a success
        v2r train my_videos/ --out models/mytask --resume        # after Ctrl-C, kill -9 or a crash: go on
        v2r train my_videos/ --out models/mytask --skip-bad      # leave out files that do not decode (listed)
        v2r train my_videos/ --out models/mytask --negatives failed_videos/  # + failed videos to push down
        v2r train my_videos/ --out models/mytask --json --quiet  # one JSON line of results, for scripts
        v2r train robot_dataset/ --camera-key observation.images.top --episodes 0:40 --out models/robot  # LeRobot v3
        v2r score models/mytask new_video.mp4 --out rewards.jsonl            # next: rewards of other videos""",
    "pretrain": """\
        v2r pretrain my_videos/ --method dino --out encoders/mytask-dino
        v2r probe encoders/mytask-dino data/mytask          # next: does time read off its features?
        v2r train my_videos/ --encoder encoders/mytask-dino --out models/mytask    # then a head on it""",
    "probe": """\
        v2r probe encoders/mytask-dino data/mytask          # data/mytask holds train/ and test_expert/
        v2r probe cnn data/mytask                           # the random-encoder baseline to beat""",
    "rl": """\
        v2r rl mountaincar --reward models/mountaincar --algo dqn --out runs/mc-v2r   # the learned reward
        v2r rl mountaincar --reward env --algo dqn --out runs/mc-env                   # the env's, to compare
        v2r rl-report runs/mc-v2r runs/mc-env                                          # next: table + curves""",
    "rl-report": """\
        v2r rl-report runs/mc-v2r runs/mc-env --plot mc.png""",
    "distill": """\
        v2r distill models/mytask --student tiny --out models/mytask-tiny    # same head on a tiny, fast CNN
        v2r eval models/mytask-tiny data/mytask                               # next: is it as good?""",
    "info": """\
        v2r info models/mytask                              # the model card: data, head, time, checks, command
        v2r info models/mytask --json                       # the same facts as one JSON object""",
    "export": """\
        v2r export models/mytask-tiny --format torchscript --out mytask.pt
        v2r export models/mytask --format onnx --out mytask.onnx             # needs: pip install onnx""",
    "score": """\
        v2r score models/mytask episode.mp4 more_videos/ --out rewards.jsonl --plot plots/
        v2r score models/mytask videos/ --out rewards.jsonl --skip-bad        # bad files listed at the end
        v2r score models/mytask videos/ --out rewards.jsonl --json            # one JSON summary line
        v2r score models/mytask other_cam/ --goal other_cam_goal.png --relative --out rewards.jsonl
                                        # another camera than the demos': progress to a goal photo taken with it
        v2r eval models/mytask data/mytask                                    # next: how good is the reward?""",
    "report": """\
        v2r report models/mytask data/mytask/test_expert data/mytask/test_fail --out report/
        # then open report/index.html in a browser""",
    "eval": """\
        v2r eval models/mytask data/mytask                  # data/mytask/{test_expert,test_fail}/ (+ labels.json)
        v2r eval models/mytask data/mytask --json           # the metrics as one JSON line
        v2r rl pendulum --reward models/pendulum --out runs/pendulum   # next: an agent on a demo task's reward""",
}


def epilog(command: str, footer: str) -> str:
    """'examples:' and the command's examples, then `footer` (for a RawDescriptionHelpFormatter)."""
    lines = textwrap.dedent(EXAMPLES.get(command, "")).strip("\n")
    return (f"examples:\n{textwrap.indent(lines, '  ')}\n\n" if lines else "") + textwrap.fill(footer, 100)


def description(text: str) -> str:
    """`text` wrapped at 100 columns: RawDescriptionHelpFormatter keeps line breaks but makes none itself."""
    return textwrap.fill(text, 100)
