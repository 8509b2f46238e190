// Moved to <userkey/core/signal_watcher.hpp> (the library's core part); this header
// keeps code written against the flat layout compiling.
#pragma once
#include "userkey/core/signal_watcher.hpp"
