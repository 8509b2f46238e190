// Moved to <userkey/core/logging.hpp> (the library's core part); this header
// keeps code written against the flat layout compiling.
#pragma once
#include "userkey/core/logging.hpp"
