// Moved to <userkey/core/user_id.hpp> (the library's core part); this header
// keeps code written against the flat layout compiling.
#pragma once
#include "userkey/core/user_id.hpp"
