// Moved to <userkey/backend/repository_factory.hpp> (the library's backend part); this
// header keeps code written against the flat layout compiling.
#pragma once
#include "userkey/backend/repository_factory.hpp"
