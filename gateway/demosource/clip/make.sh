#!/bin/sh
# Makes the built-in source's clip (run once; the output is committed): 8 s of ffmpeg's
# testsrc2 and a 440 Hz tone, H.264/AAC in MPEG-TS, four 2 s segments each starting with a
# keyframe. 8 s because it is both 200 video frames at 25 fps and 375 AAC frames at 48 kHz
# (the tone is trimmed by the encoder's priming frame), so audio and video timestamps span
# exactly the loop and demosource can continue them across it without a gap or an overlap.
set -eu
cd "$(dirname "$0")"
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x180:rate=25 \
  -f lavfi -i "sine=frequency=440:sample_rate=48000,atrim=end_sample=382976" -t 8 \
  -c:v libx264 -preset veryfast -b:v 200k -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 48k -ar 48000 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_segment_filename 'clip%d.ts' /tmp/demosource-clip.m3u8
rm -f /tmp/demosource-clip.m3u8
