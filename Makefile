# The two commands a newcomer needs:
#   make run   - create/refresh .venv, install, run the main job (see README)
#   make test  - create/refresh .venv, install with test extras, run the test suite
# Both install the system libraries MuJoCo needs for headless rendering when they are missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Headless rendering: EGL (libEGL + Mesa). Override with MUJOCO_GL=osmesa if EGL is unavailable.
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= $(MUJOCO_GL)

SYSTEM_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 libosmesa6 libusb-1.0-0 libhidapi-hidraw0 libhidapi-libusb0
SYSTEM_STAMP := $(VENV)/.system-deps
INSTALL_STAMP := $(VENV)/.installed
# franka-sim (the libfranka-protocol server the FR3 backend's tests run against) pins numpy 1.26 and
# mujoco 3.2, so it gets its own venv (drivers/arm/fr3_sim_venv.py; ~25 s, ~220 MB).
FRANKA_SIM_STAMP := .venv-franka-sim/.franka-sim-stamp.json

.PHONY: run test bench install system-deps clean

# The main job: 20 scripted demos, then SAC/RLPD on state pick_cube; writes runs/<name>/ with
# TensorBoard logs, eval.csv, curve.png and eval.mp4.
RUN_NAME ?= pick_cube-$(shell date +%Y%m%d-%H%M%S)
RUN_STEPS ?= 15000
run: $(INSTALL_STAMP)
	$(VENV)/bin/robot-rl train --task pick_cube --expert-demos 20 --steps $(RUN_STEPS) --name $(RUN_NAME)

test: $(INSTALL_STAMP) $(FRANKA_SIM_STAMP)
	$(PY) -m pytest -q --durations=25

bench: $(INSTALL_STAMP)
	$(PY) benchmarks/sim_speed.py

install: $(INSTALL_STAMP)

# System libraries for headless MuJoCo rendering (EGL/OSMesa), RealSense (libusb) and SpaceMouse (hidapi). Installed with apt when we can (root or
# passwordless sudo); otherwise the exact command is printed and the build stops.
$(SYSTEM_STAMP):
	@missing=""; \
	for lib in libEGL.so.1 libOSMesa.so libusb-1.0.so.0 libhidapi-hidraw.so.0 libhidapi-libusb.so.0; do \
	  ldconfig -p 2>/dev/null | grep -q "$$lib" || missing="$$missing $$lib"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "robot_rl: headless rendering needs:$$missing (Debian/Ubuntu: $(SYSTEM_PACKAGES))"; \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "robot_rl: please run: sudo apt-get install -y $(SYSTEM_PACKAGES)"; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null \
	    || { echo "robot_rl: apt-get install failed; run: sudo apt-get install -y $(SYSTEM_PACKAGES)"; exit 1; }; \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@touch $@

# Refreshes whenever pyproject.toml or constraints.txt change. torch is installed first from the
# pinned CPU wheel; every later pip call passes the constraints file so nothing pulls CUDA builds.
$(INSTALL_STAMP): $(SYSTEM_STAMP) pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[test,devices,bench,jax,gym,quad,arm,car,fast,export,gripper,panda,ur,ros]"
	@touch $@

# Rebuilt when the pins in the builder change; the builder writes the stamp itself.
$(FRANKA_SIM_STAMP): drivers/arm/fr3_sim_venv.py
	$(PYTHON) drivers/arm/fr3_sim_venv.py

clean:
	rm -rf $(VENV) runs .pytest_cache
