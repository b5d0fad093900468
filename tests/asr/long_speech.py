"""Long, fast read speech for backend tests: espeak-ng reading plain English passages."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
import soundfile as sf
import soxr

PASSAGE = (
    "The morning shift begins at seven, when the nurses check every patient on the ward. "
    "They record the blood pressure, the pulse and the temperature, and they ask each patient "
    "how the night went. Most people sleep badly in a hospital, because the lights stay on and "
    "the machines keep beeping. After the rounds the doctors meet in a small room beside the "
    "kitchen. They talk about new patients, test results and anyone who needs a scan before "
    "lunch. A porter brings the trolley with breakfast, and the smell of toast drifts along the "
    "corridor. Visitors are allowed in the afternoon, from two until six, and children must stay "
    "with an adult. The pharmacy sends the medicine up in sealed boxes, one box for each bed, "
    "with the name and the date of birth on the label. If a label is wrong the nurse sends the "
    "box back and writes a note in the book. In the evening the ward becomes quiet again, and "
    "the night staff take over after a short meeting about every patient. "
    "The farmer drove his old truck to the market every Saturday. He sold apples, potatoes, "
    "onions and fresh eggs, and he always kept a jar of honey for his best customers. When the "
    "weather was bad he covered the stall with a green sheet and stood under it with a cup of "
    "coffee. His daughter helped him count the money at the end of the day, and together they "
    "drove home along the river as the sun went down behind the hills. "
    "The library on the corner opened a new reading room last spring. It has tall windows, long "
    "wooden tables and a quiet corner for students who need to study for their exams. On "
    "Thursday evenings a local writer reads from her latest book, and the room is always full. "
    "The librarian says that more people borrow books now than ten years ago, which surprised "
    "everyone in the town. "
    "Our train left the city just after nine and moved slowly through the suburbs. Outside the "
    "window we saw gardens, small factories and a long line of trucks waiting at a bridge. The "
    "conductor checked our tickets and told us that the dining car would open at ten. We ordered "
    "tea and sandwiches and watched the fields turn from green to gold. By noon we could see the "
    "mountains, and the air in the carriage grew cooler as the track began to climb. "
    "Every summer the town holds a festival by the lake. There is music on a wooden stage, food "
    "from many countries and a race for small boats that the children build themselves. Last "
    "year more than two thousand people came, and the mayor thanked the volunteers who cleaned "
    "the beach the next morning. "
    "My neighbour is learning to play the piano at the age of seventy. She practises for an hour "
    "every morning before breakfast, and on Sundays her teacher comes to the house to listen."
)

SENTENCES = tuple(s.strip() for s in re.split(r"(?<=\.) ", PASSAGE))


def passage(first: int, count: int) -> str:
    """``count`` sentences of the passage from sentence ``first`` (wrapping around)."""
    return " ".join(SENTENCES[(first + i) % len(SENTENCES)] for i in range(count))


def espeak(text: str, *, wpm: int, voice: str = "en-us", sample_rate: int = 16000) -> np.ndarray:
    """``text`` read by espeak-ng at ``wpm`` words per minute, float32 mono at
    ``sample_rate``."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise RuntimeError("espeak-ng is needed for these tests: apt-get install espeak-ng")
    wav = subprocess.run(
        [program, "-v", voice, "-s", str(wpm), "--stdout", text], check=True, capture_output=True
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate, sample_rate).astype(np.float32)
