// Moved to <userkey/core/query_string.hpp> (the library's core part); this header
// keeps code written against the flat layout compiling.
#pragma once
#include "userkey/core/query_string.hpp"
