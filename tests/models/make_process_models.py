"""Test models for the process sandbox, cloudpickled by the Python that will run them (an environment's).

    python make_process_models.py --out DIR
Each function is one thing a sandbox must hold against: tests/test_process_sandbox.py says what.
Runs with the environment's Python and libraries only (cloudpickle, pandas, numpy).
"""

import argparse
import os

import cloudpickle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    def predictions(live_features):
        return live_features.iloc[:, 0].rank(pct=True, method="first").to_frame("prediction")

    def good(live_features):
        return predictions(live_features)

    def connects(live_features):
        """What connecting out says, on stderr; the exception is the run's end (as a model's would be)."""
        import socket
        import sys

        try:
            socket.create_connection(("192.0.2.1", 80), timeout=3)  # TEST-NET-1: never routed anywhere
        except OSError as exc:
            print(f"CONNECT {type(exc).__name__} {exc.errno}", file=sys.stderr, flush=True)
            raise

    def loopback(live_features):
        """127.0.0.1 works in a container (its own loopback): says whether it does here."""
        import socket
        import sys

        try:
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen()
                socket.create_connection(server.getsockname(), timeout=3).close()
            print("LOOPBACK ok", file=sys.stderr, flush=True)
        except OSError as exc:
            print(f"LOOPBACK {exc.errno}", file=sys.stderr, flush=True)
        return predictions(live_features)

    def sleeps(live_features):
        import time

        while True:
            time.sleep(1)

    def allocates(live_features):
        import numpy as np

        blocks = []
        for _ in range(64):  # 64 x 128 MiB, every page touched
            blocks.append(np.ones(128 * 1024 * 1024 // 8))
        return predictions(live_features)

    def allocates_in_a_child(live_features):
        """The memory is a child process's: only the whole tree's resident memory sees it."""
        import subprocess
        import sys

        code = "import numpy as np, time\nb = [np.ones(16 * 1024 * 1024) for _ in range(40)]\ntime.sleep(600)\n"
        subprocess.Popen([sys.executable, "-c", code])
        import time

        while True:
            time.sleep(1)

    def forked_workers_share_memory(live_features):
        """600 MiB, then 3 forked workers that read it (copy-on-write: shared, not copied), as
        multiprocessing's fork start method does: it uses 600 MiB, not 2.4 GiB."""
        import sys
        import time

        import numpy as np

        data = np.ones(600 * 1024 * 1024 // 8)
        workers = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0 if data[::4096].sum() > 0 else 1)
            workers.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in workers]
        print(f"WORKERS {codes}", file=sys.stderr, flush=True)
        return predictions(live_features)

    def forks_and_detaches(live_features):
        """A child, and a grandchild that leaves its session and its parent: both must die with the run."""
        import sys
        import time

        child = os.fork()
        if child == 0:
            grandchild = os.fork()
            if grandchild == 0:
                os.setsid()
                print(f"GRANDCHILD {os.getpid()}", file=sys.stderr, flush=True)
                while True:
                    time.sleep(1)
            os._exit(0)  # the grandchild is an orphan now
        os.waitpid(child, 0)
        print(f"CHILD {child}", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)

    def leaves_a_daemon(live_features):
        """Predicts well, but leaves a detached process behind: the sandbox's end must take it along."""
        import subprocess
        import sys

        daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        print(f"DAEMON {daemon.pid}", file=sys.stderr, flush=True)
        return predictions(live_features)

    def writes_its_inputs(live_features):
        """Overwrites every input it can find (its copies): the user's files must not change."""
        import sys

        folder = sys.argv[sys.argv.index("--input-dir") + 1] if "--input-dir" in sys.argv else "/input"
        for name in os.listdir(folder):
            try:
                with open(os.path.join(folder, name), "wb") as handle:
                    handle.write(b"overwritten")
                print(f"OVERWROTE {name}", file=sys.stderr, flush=True)
            except OSError as exc:
                print(f"REFUSED {name} {exc.errno}", file=sys.stderr, flush=True)
        return predictions(live_features)

    def reports_limits(live_features):
        import resource
        import sys

        print(f"CORES {sorted(os.sched_getaffinity(0))}", file=sys.stderr)
        print(f"NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}", file=sys.stderr)
        print(f"HOME {os.environ.get('HOME')} CWD {os.getcwd()} KEYS {sorted(os.environ)}", file=sys.stderr)
        return predictions(live_features)

    made = {name: fn for name, fn in locals().items()
            if callable(fn) and name not in ("predictions", "main", "parser", "args")}
    os.makedirs(args.out, exist_ok=True)
    for name, fn in made.items():
        with open(os.path.join(args.out, f"{name}.pkl"), "wb") as handle:
            cloudpickle.dump(fn, handle)
    print(f"wrote {len(made)} pickles")


if __name__ == "__main__":
    main()
