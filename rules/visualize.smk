# Per-patient pictures: overlay video and key frame, and point clouds of the LA surfaces in world mm.


rule overlay_video:
    input:
        image=case_image,
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
    output:
        video="results/videos/{patient}.mp4",
        keyframe="results/overlays/{patient}.png",
    params:
        fps=config["visualize"]["video_fps"],
        max_size_px=config["visualize"]["max_size_px"],
    log:
        "logs/overlay_video/{patient}.log",
    script:
        "../scripts/overlay_video.py"


rule point_cloud_prediction:
    input:
        mask="results/masks/{patient}.nii.gz",
    output:
        cloud="results/pointclouds/{patient}_pred.ply",
    params:
        rgb=(0.1, 0.8, 0.2),
    log:
        "logs/point_cloud/{patient}_pred.log",
    script:
        "../scripts/point_cloud.py"


rule point_cloud_truth:
    input:
        mask=required_label,
    output:
        cloud="results/pointclouds/{patient}_true.ply",
    params:
        rgb=(0.9, 0.1, 0.1),
    log:
        "logs/point_cloud/{patient}_true.log",
    script:
        "../scripts/point_cloud.py"
