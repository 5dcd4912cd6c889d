// The avatar in 3D: the generation's glb (three.js GLTFLoader), orbit and turntable, the
// Head's FACS morph targets as expressions, a few poses, the description's body scales, and
// textures replaced live from the document copy when a paint or colour edit lands.

import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

const SCALE_AXES = { HeightScale: "y", WidthScale: "x", DepthScale: "z" };

export class Viewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xdfe3ea);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8f99, 2.2));
    const key = new THREE.DirectionalLight(0xffffff, 1.6);
    key.position.set(1.5, 3, 4);
    this.scene.add(key);
    this.camera = new THREE.PerspectiveCamera(30, 3 / 4, 0.05, 50);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = true;
    this.controls.listenToKeyEvents(canvas);
    this.turntable = false;
    this.pose = "rest";
    this.root = null;
    this.parts = new Map(); // part name -> mesh
    this.rest = new Map(); // bone -> rest quaternion
    this.built = {}; // the scales the glb was built with
    this.frames = 0;
    this.dirty = true;
    this.controls.addEventListener("change", () => { this.dirty = true; });
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
    this.renderer.setAnimationLoop(() => this.frame());
  }

  resize() {
    const w = this.canvas.clientWidth || 300, h = this.canvas.clientHeight || 400;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.dirty = true;
  }

  // Draws only when something changed (a software renderer would otherwise spend a core on it).
  frame() {
    if (this.root && this.turntable) {
      this.root.rotation.y += 0.01;
      this.dirty = true;
    }
    if (this.controls.update()) this.dirty = true;
    if (!this.dirty) return;
    this.dirty = false;
    this.renderer.render(this.scene, this.camera);
    this.frames += 1;
  }

  /**
   * Show a glb (ArrayBuffer); ``description`` holds the body scales it was built with.  With
   * ``keepView`` (the same avatar reshaped) the camera, pose, turn and expressions stay.
   */
  async load(glb, description, { keepView = false } = {}) {
    const gltf = await new GLTFLoader().parseAsync(glb, "");
    const spin = this.root ? this.root.rotation.y : 0;
    const weights = keepView ? this.expressionWeights() : {};
    if (this.root) this.dispose(this.root);
    this.root = new THREE.Group();
    this.root.add(gltf.scene);
    this.scene.add(this.root);
    this.parts.clear();
    this.rest.clear();
    gltf.scene.traverse((o) => {
      if (o.isMesh) {
        this.parts.set(o.name.replace(/_Geo$/, ""), o);
        o.frustumCulled = false; // skinned: the bind-pose bounds do not follow poses
      }
      if (o.isBone) this.rest.set(o, o.quaternion.clone());
    });
    this.built = Object.fromEntries(Object.keys(SCALE_AXES).map((k) => [k, description[k] ?? 1]));
    if (keepView) {
      this.root.rotation.y = spin;
      this.setPose(this.pose);
      for (const [name, w] of Object.entries(weights)) this.setExpression(name, w);
      this.dirty = true;
      return;
    }
    const box = new THREE.Box3().setFromObject(gltf.scene);
    const size = box.getSize(new THREE.Vector3()), centre = box.getCenter(new THREE.Vector3());
    this.controls.target.copy(centre);
    this.camera.position.set(centre.x, centre.y + size.y * 0.05, centre.z + size.y * 2.3);
    this.camera.near = size.y / 100;
    this.camera.far = size.y * 20;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.dirty = true;
  }

  /** The Head's morph target names (FACS), for the expression sliders. */
  expressions() {
    const head = this.parts.get("Head");
    return head && head.morphTargetDictionary ? Object.keys(head.morphTargetDictionary) : [];
  }

  expressionWeights() {
    const head = this.parts.get("Head");
    if (!head || !head.morphTargetDictionary) return {};
    return Object.fromEntries(Object.entries(head.morphTargetDictionary)
      .map(([name, i]) => [name, head.morphTargetInfluences[i]]).filter(([, w]) => w > 0));
  }

  dispose(root) {
    this.scene.remove(root);
    root.traverse((o) => {
      if (!o.isMesh) return;
      o.geometry.dispose();
      if (o.material.map) o.material.map.dispose();
      o.material.dispose();
    });
  }

  setExpression(name, weight) {
    const head = this.parts.get("Head");
    if (head && name in head.morphTargetDictionary) head.morphTargetInfluences[head.morphTargetDictionary[name]] = weight;
    this.dirty = true;
  }

  /** Body scales from the description, relative to those the glb was built with. */
  setScales(description) {
    if (!this.root) return;
    for (const [name, axis] of Object.entries(SCALE_AXES)) {
      this.root.scale[axis] = (description[name] ?? 1) / (this.built[name] || 1);
    }
    this.dirty = true;
  }

  bone(name) {
    for (const b of this.rest.keys()) if (b.name === name) return b;
    return null;
  }

  // Turn ``bone`` so that its child joint points along ``dir`` (world space).
  aim(boneName, childName, dir) {
    const bone = this.bone(boneName), child = this.bone(childName);
    if (!bone || !child) return;
    this.root.updateMatrixWorld(true);
    const a = bone.getWorldPosition(new THREE.Vector3()), b = child.getWorldPosition(new THREE.Vector3());
    const turn = new THREE.Quaternion().setFromUnitVectors(b.sub(a).normalize(), dir.clone().normalize());
    const parent = bone.parent.getWorldQuaternion(new THREE.Quaternion());
    const own = bone.getWorldQuaternion(new THREE.Quaternion());
    bone.quaternion.copy(parent.invert().multiply(turn.multiply(own)));
    this.root.updateMatrixWorld(true);
  }

  setPose(name) {
    this.pose = name;
    if (!this.root) return;
    const spin = this.root.rotation.y;
    this.root.rotation.y = 0;
    for (const [bone, q] of this.rest) bone.quaternion.copy(q);
    const v = (x, y, z) => new THREE.Vector3(x, y, z);
    // The avatar faces +Z; its left side is +X.
    if (name === "relaxed") {
      this.aim("LeftUpperArm", "LeftLowerArm", v(0.12, -1, 0));
      this.aim("RightUpperArm", "RightLowerArm", v(-0.12, -1, 0));
    } else if (name === "tpose") {
      this.aim("LeftUpperArm", "LeftLowerArm", v(1, 0, 0));
      this.aim("RightUpperArm", "RightLowerArm", v(-1, 0, 0));
      this.aim("LeftLowerArm", "LeftHand", v(1, 0, 0));
      this.aim("RightLowerArm", "RightHand", v(-1, 0, 0));
    } else if (name === "wave") {
      this.aim("LeftUpperArm", "LeftLowerArm", v(0.12, -1, 0));
      this.aim("RightUpperArm", "RightLowerArm", v(-1, 0.35, 0));
      this.aim("RightLowerArm", "RightHand", v(-0.25, 1, 0.1));
    }
    this.root.rotation.y = spin;
    this.dirty = true;
  }

  /** The part and texture coordinates (0..1, origin top left) under a point of the canvas, or null. */
  pick(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((clientX - r.left) / r.width) * 2 - 1, -((clientY - r.top) / r.height) * 2 + 1);
    const ray = new THREE.Raycaster();
    ray.setFromCamera(ndc, this.camera);
    return this.firstHit(ray);
  }

  firstHit(ray) {
    const hits = ray.intersectObjects([...this.parts.values()], false);
    for (const h of hits) {
      if (h.uv) return { part: h.object.name.replace(/_Geo$/, ""), uv: [h.uv.x, h.uv.y] };
    }
    return null;
  }

  /** Where the middle of the face is on the Head texture (a ray from straight in front). */
  faceUv() {
    const head = this.parts.get("Head");
    if (!head) return null;
    this.root.updateMatrixWorld(true);
    const box = new THREE.Box3().setFromObject(head);
    const c = box.getCenter(new THREE.Vector3());
    const ray = new THREE.Raycaster(new THREE.Vector3(c.x, c.y, box.max.z + 1), new THREE.Vector3(0, 0, -1));
    const hit = ray.intersectObject(head, false)[0];
    return hit && hit.uv ? [hit.uv.x, hit.uv.y] : null;
  }

  /** Replace a part's texture (RGBA pixels: what the part shows, doc.js ``surface``). */
  setTexture(part, rgba, width, height) {
    const mesh = this.parts.get(part);
    if (!mesh) return;
    const tex = new THREE.DataTexture(rgba, width, height, THREE.RGBAFormat);
    tex.colorSpace = THREE.SRGBColorSpace;
    tex.flipY = false; // glTF's UV origin is the image's top left, like the document's pixels
    tex.magFilter = THREE.LinearFilter;
    tex.minFilter = THREE.LinearMipmapLinearFilter;
    tex.generateMipmaps = true;
    tex.needsUpdate = true;
    const old = mesh.material.map;
    mesh.material.map = tex;
    mesh.material.needsUpdate = true;
    if (old) old.dispose();
    this.dirty = true;
  }
}
