# Python 2.7, started by `scripts/real-mesos run`: runs the real Mesos 1.11 master and agents of
# libmesos's local mode in this process until SIGTERM or SIGINT.
#
# `MesosSchedulerDriver(..., "local")` starts the master and MESOS_NUM_SLAVES agents (Mesos's
# src/local/local.cpp reads their flags from MESOS_*); the cluster lives as long as the driver
# object. The driver's own framework only exists to start it: it declines everything, and once it
# is registered it is torn down through the master's /master/teardown, so the master shows no
# framework of ours. Before the driver starts, libprocess is initialised with the master as its
# HTTP delegate, so that /api/v1/scheduler, /api/v1, /state and /redirect answer at the root as on
# a standalone mesos-master (the agents answer under /slave(N)/).
from __future__ import print_function

import ctypes
import os
import signal
import sys
import time
import urllib2

from mesos.interface import Scheduler, mesos_pb2
from mesos.scheduler import MesosSchedulerDriver

# libmesos and its shims are loaded: the agents (and the executors and tasks they start, which
# inherit their environment) get the caller's environment back.
for name in ("LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"):
    caller = os.environ.pop("REAL_MESOS_CALLER_" + name, None)
    if caller is not None:
        os.environ[name] = caller
    else:
        os.environ.pop(name, None)

# process::initialize(const Option<std::string>& delegate, const Option<std::string>& readonly_auth,
#                     const Option<std::string>& readwrite_auth), as libmesos exports it.
INITIALIZE = "_ZN7process10initializeERK6OptionINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEES9_S9_"


class CxxString(ctypes.Structure):
    """libstdc++'s std::string (new ABI): data pointer, length, 16-byte inline buffer."""
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t), ("inline", ctypes.c_char * 16)]


class OptionString(ctypes.Structure):
    """stout's Option<std::string>: a state (0 SOME, 1 NONE), then the value."""
    _fields_ = [("state", ctypes.c_int), ("value", CxxString)]


def option(text, keep):
    opt = OptionString()
    if text is None:
        opt.state = 1
        return opt
    opt.state = 0
    if len(text) < 16:
        opt.value.inline = text
        opt.value.data = ctypes.addressof(opt) + OptionString.value.offset + CxxString.inline.offset
    else:
        heap = ctypes.create_string_buffer(text)
        keep.append(heap)
        opt.value.data = ctypes.addressof(heap)
        # The inline buffer holds the capacity of a heap string.
        ctypes.memmove(ctypes.addressof(opt) + OptionString.value.offset + CxxString.inline.offset,
                       ctypes.byref(ctypes.c_size_t(len(text))), 8)
    opt.value.size = len(text)
    return opt


def make_master_the_delegate():
    import mesos.scheduler
    lib = ctypes.CDLL(os.path.join(os.path.dirname(mesos.scheduler.__file__), "_scheduler.so"))
    initialize = getattr(lib, INITIALIZE)
    initialize.restype = ctypes.c_bool
    keep = []
    args = [option("master", keep), option(None, keep), option(None, keep)]
    initialize(*[ctypes.byref(a) for a in args])


class Starter(Scheduler):
    """The local cluster's own framework: registers, wants nothing."""

    def __init__(self):
        self.framework_id = None

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id.value
        driver.suppressOffers()

    def reregistered(self, driver, master_info):
        driver.suppressOffers()

    def resourceOffers(self, driver, offers):
        filters = mesos_pb2.Filters()
        filters.refuse_seconds = 86400.0
        for offer in offers:
            driver.declineOffer(offer.id, filters)

    def error(self, driver, message):
        # Expected once the framework is torn down.
        pass


def main():
    make_master_the_delegate()
    framework = mesos_pb2.FrameworkInfo()
    framework.user = os.environ.get("USER", "root") or "root"
    framework.name = "real-mesos-local-starter"
    starter = Starter()
    driver = MesosSchedulerDriver(starter, framework, "local")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    driver.start()
    port = os.environ["LIBPROCESS_PORT"]
    torn_down = False
    while not stop:
        time.sleep(0.1)
        if starter.framework_id and not torn_down:
            torn_down = True
            try:
                urllib2.urlopen("http://127.0.0.1:%s/master/teardown" % port, "frameworkId=" + starter.framework_id, 10).read()
            except Exception as e:  # the cluster still works; the starter then stays registered
                print("real-mesos: could not tear down the starter framework: %s" % e, file=sys.stderr)
            print("real-mesos: Mesos 1.11 master and %s agent(s) on 127.0.0.1:%s" % (os.environ.get("MESOS_NUM_SLAVES", "1"), port))
            sys.stdout.flush()
    # Leaving without destructors: the driver's would wait for the agents' executors.
    os._exit(0)


if __name__ == "__main__":
    main()
