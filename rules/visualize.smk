# Per-patient pictures: overlay video and key frame, and point clouds of the LA surfaces in world mm.


rule overlay_video:
    input:
        image=case_image,
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
    output:
        video="results/videos/{patient}.mp4",
        keyframe="results/overlays/{patient}.png",
    log:
        "logs/overlay_video/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("overlay_video"),
        fps=config["visualize"]["video_fps"],
        max_size_px=config["visualize"]["max_size_px"],
    script:
        "../scripts/overlay_video.py"


rule point_cloud_prediction:
    input:
        mask="results/masks/{patient}.nii.gz",
    output:
        cloud="results/pointclouds/{patient}_pred.ply",
    log:
        "logs/point_cloud/{patient}_pred.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("point_cloud"),
        rgb=PREDICTION_RGB,
    script:
        "../scripts/point_cloud.py"


use rule point_cloud_prediction as point_cloud_truth with:
    input:
        mask=required_label,
    output:
        cloud="results/pointclouds/{patient}_true.ply",
    log:
        "logs/point_cloud/{patient}_true.log",
    params:
        code=code_of("point_cloud"),
        rgb=REFERENCE_RGB,


rule montage:
    input:
        image=case_image,
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
    output:
        montage="results/montages/{patient}.png",
    log:
        "logs/montage/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("montage"),
        n_slices=config["visualize"]["montage_slices"],
    script:
        "../scripts/montage.py"


rule surface_mesh_prediction:
    input:
        mask="results/masks/{patient}.nii.gz",
    output:
        ply="results/meshes/{patient}_pred.ply",
        stl="results/meshes/{patient}_pred.stl",
    log:
        "logs/surface_mesh/{patient}_pred.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("surface_mesh"),
        smoothing_iterations=config["mesh"]["smoothing_iterations"],
        rgb=PREDICTION_RGB,
    script:
        "../scripts/surface_mesh.py"


use rule surface_mesh_prediction as surface_mesh_truth with:
    input:
        mask=required_label,
    output:
        ply="results/meshes/{patient}_true.ply",
        stl="results/meshes/{patient}_true.stl",
    log:
        "logs/surface_mesh/{patient}_true.log",
    params:
        code=code_of("surface_mesh"),
        smoothing_iterations=config["mesh"]["smoothing_iterations"],
        rgb=REFERENCE_RGB,


rule viewer3d:
    input:
        prediction="results/meshes/{patient}_pred.ply",
        reference=reference_mesh,
        metrics="results/metrics/cases/{patient}.json",
    output:
        viewer="results/viewers/{patient}.html",
        render="results/renders/{patient}.png",
    log:
        "logs/viewer3d/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("viewer3d"),
        max_triangles=config["mesh"]["viewer_max_triangles"],
    script:
        "../scripts/viewer3d.py"
