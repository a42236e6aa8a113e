#!/usr/bin/env bash
# Re-create every number in bench/README.md (run from the repo root, venv active,
# ../shared/data beside the checkout). Results land in bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
V=../shared/data/videos
mkdir -p bench/results
run() { echo "+ python -m liveaffect bench $*"; python -m liveaffect bench "$@"; }

# 1. Default model, one face, 640x360: pipeline vs the original design's loop, engine diffs.
run --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --model final_model \
    --json bench/results/default_single_face.json
run --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --model final_model --no-tta \
    --baseline-frames 0 --compare "" --json bench/results/default_single_face_no_tta.json
# 2. EfficientNetV2S multi-task bundle at 224x224 (random weights: timing only), one face.
for engine in tflite tflite-int8; do
  run --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --random-model efficientnetv2s:224 \
      --engine $engine --baseline-frames 20 --compare "" \
      --json bench/results/effnetv2s224_${engine}.json
done
run --source $V/pyfeat_single_face.mp4 --random-model efficientnetv2s:224 --engine tflite \
    --baseline-frames 0 --compare tflite,tflite-fp16,tflite-int8 \
    --json bench/results/effnetv2s224_engine_diffs.json
# 3. The 1080p crowd clip, every detected face in one batch per frame.
run --source $V/facenet_pytorch_video.mp4 --model final_model --baseline-frames 20 --compare "" \
    --json bench/results/default_crowd.json
run --source $V/facenet_pytorch_video.mp4 --random-model efficientnetv2s:224 --engine tflite-int8 \
    --baseline-frames 0 --compare "" --json bench/results/effnetv2s224_crowd.json
# 4. Memory over 10,000 frames (the clip looped).
run --source $V/pyfeat_single_face.mp4 --model final_model --frames 10000 --loop \
    --baseline-frames 0 --compare "" --memory-every 250 --json bench/results/default_memory_10k.json
# 5. Live-camera latency: the clip replayed at its own fps, newest frame wins.
run --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --random-model efficientnetv2s:224 \
    --engine tflite --camera-sim --baseline-frames 0 --compare "" \
    --json bench/results/effnetv2s224_camera_sim.json
# 6. Training input pipeline throughput (tf.data: decode, cache, augment).
python bench/data_pipeline.py --data ../shared/data/fer2013/train --json bench/results/data_pipeline_fer48.json
# 7. Face crops per second through the app's engine (the default model, real FER2013 crops),
#    with the card's test-time views (as the app runs) and with one view (--no-tta).
python bench/crop_throughput.py --model final_model --data ../shared/data/fer2013/test \
    --json bench/results/default_crop_throughput.json
python bench/crop_throughput.py --model final_model --data ../shared/data/fer2013/test --no-tta \
    --json bench/results/default_crop_throughput_no_tta.json
# 8. Training step time of the cnn backbone at several channel widths (epochs per hour).
python bench/train_step.py --config configs/default_model.yaml \
    --widths "32,64,128,256;16,64,128,256;24,48,96,192;32,64,128,384" \
    --json bench/results/train_step_widths.json
# 9. What --stream costs: all four outlets (LSL, OSC, WebSocket, JSON lines) with one client
#     each against none, one face, alternating rounds (medians).
python bench/stream_cost.py --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --model final_model \
    --frames 472 --rounds 17 --json bench/results/stream_cost_single_face.json
python bench/stream_cost.py --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --model final_model \
    --frames 472 --rounds 17 --priority normal --json bench/results/stream_cost_single_face_normal.json
#     How late a frame's data arrives, with and without two busy processes beside the app.
for P in low normal; do for L in 0 2; do
    python bench/stream_latency.py --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --load $L \
        --priority $P --json bench/results/stream_latency_${P}_load$L.json
done; done
# 10. Drawing the live view at 1280x720 with four faces (every head, and the default card).
python bench/draw_cost.py --size 1280x720 --faces 4 --json bench/results/draw_cost_all_heads.json
python bench/draw_cost.py --size 1280x720 --faces 4 --card final_model \
    --json bench/results/draw_cost_default_card.json
# Start-up: seconds and peak RSS to the first frame, warm and cold TFLite cache, --engine keras.
python bench/startup.py --source $V/pyfeat_single_face.mp4 --rounds 5 \
    --json bench/results/startup.json
# 11. Batch analysis: analyze vs the live loop on the same clip (interleaved rounds, medians).
python bench/analyze_speed.py --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --model final_model \
    --rounds 5 --json bench/results/analyze_vs_live.json
# 12. analyze on a local 2-worker Ray cluster (needs requirements-ray.txt): per-worker FPS in
#     each DIR/<video>/summary.json (bench/results/analyze_ray_local_2workers.json summarises them).
python -m liveaffect analyze $V --out /tmp/liveaffect_ray_bench --ray --workers 2 --quiet --force
# 13. How the default --min-face-score was chosen: detections per threshold on the clips.
python bench/face_score.py --videos $V --json bench/results/face_score.json
# 13b. BlazeFace both: full range on every Nth frame of a video against every frame
#      (--full-range-every; time, faces found, boxes, per clip).
python bench/full_range_schedule.py --videos $V --json bench/results/full_range_schedule.json
# 13c. BlazeFace's frame shrink: halving by area first against one INTER_AREA step (time of
#      the resize and of the detector, faces found, per clip).
python bench/detector_shrink.py --videos $V --json bench/results/detector_shrink.json
# 13d. The live pipeline at a 720p camera's frame size: a 1280x720 copy of the Pexels clip.
python bench/resize_clip.py --source $V/pyfeat_WolfgangLanger_Pexels.mp4 --size 1280x720 \
    --out /tmp/pexels720.mp4
python -m liveaffect bench --source /tmp/pexels720.mp4 --model final_model --baseline-frames 0 \
    --compare "" --json bench/results/default_single_face_720p.json
# 11. Model-only speed (inference per batch, one training step) on any Keras backend. The
#     H200 row of bench/README.md ran this with KERAS_BACKEND=jax on the GPU machine (no
#     TensorFlow there; EFFNET.yaml = configs/default_model.yaml with backbone
#     efficientnetv2s, input_size 224, color rgb). Here, on this CPU, with TensorFlow:
python bench/model_throughput.py --bundle final_model --random-model efficientnetv2s:224 \
    --batches 1,32 --train configs/default_model.yaml --json bench/results/model_throughput_cpu.json
