"""Media I/O: the one ffmpeg runner, output formats, and container handling done in Python.

* :mod:`.ffmpeg` — finding ffmpeg and running it (every ffmpeg subprocess goes through it);
* :mod:`.formats` — the output formats mix and merge write;
* :mod:`.adts` — AAC lifted out of MPEG-TS as ADTS frames, silence frames, remuxing;
* :mod:`.tones` — measuring the synthetic users' tones (synth's truth, tests, verify).
"""
