// The live player's AudioWorklet: a small jitter buffer between the
// WebSocket's 20 ms frames and the audio clock. It starts playing once
// TARGET of audio waits, re-buffers after running dry, and drops the oldest
// audio when more than MAX waits (after a hold the server sends the hold's
// silence at once), so the delay stays near TARGET.
"use strict";

const TARGET_SECONDS = 0.08;
const MAX_SECONDS = 0.3;

class LivePlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = options.processorOptions.channels;
    this.target = Math.round(TARGET_SECONDS * sampleRate);
    this.max = Math.round(MAX_SECONDS * sampleRate);
    this.queue = [];   // frames: arrays of Float32Array, one per channel
    this.offset = 0;   // samples of queue[0] already played
    this.buffered = 0; // samples per channel waiting
    this.playing = false;
    this.port.onmessage = (event) => {
      const frame = event.data;
      this.queue.push(frame);
      this.buffered += frame[0].length;
      // Over MAX: back down to TARGET, not just under MAX, so the delay
      // after a burst is TARGET again rather than MAX for the rest of the
      // call.
      if (this.buffered > this.max) {
        while (this.buffered > this.target && this.queue.length > 1) {
          const dropped = this.queue.shift();
          this.buffered -= dropped[0].length - this.offset;
          this.offset = 0;
        }
      }
    };
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const n = out[0].length;
    if (!this.playing && this.buffered < this.target) return true;
    this.playing = true;
    let written = 0;
    while (written < n && this.queue.length) {
      const frame = this.queue[0];
      const take = Math.min(n - written, frame[0].length - this.offset);
      for (let c = 0; c < out.length; c++) {
        out[c].set(frame[Math.min(c, frame.length - 1)].subarray(this.offset, this.offset + take), written);
      }
      written += take;
      this.offset += take;
      this.buffered -= take;
      if (this.offset === frame[0].length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    // Ran dry: the rest is silence (the output starts zeroed), and
    // playing waits for TARGET again.
    if (written < n) this.playing = false;
    return true;
  }
}

registerProcessor("callrec-live", LivePlayer);
