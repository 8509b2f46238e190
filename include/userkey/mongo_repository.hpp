// Moved to <userkey/backend/mongo_repository.hpp> (the library's backend part); this
// header keeps code written against the flat layout compiling.
#pragma once
#include "userkey/backend/mongo_repository.hpp"
