// SPDX-License-Identifier: MIT
// cxx_vector.cpp - new[]/delete[] and std::vector growth reach libspill through libstdc++.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "maps.h"

static int fails;

#define CHECK(c, ...) do { if (!(c)) { fails++; std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
	std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

// 1 when [p, p+n) lies in the one spill mapping.
static bool spilled(const void *p, size_t n)
{
	uintptr_t lo = 0, hi = 0;
	return spill_maps(&lo, &hi) == 1 && (uintptr_t)p >= lo && (uintptr_t)p + n <= hi;
}

int main()
{
	const size_t M = 1024 * 1024;

	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	// new[] of a big array (4 MiB of uint64_t) spills; a small one does not.
	{
		size_t n = 4 * M / sizeof(uint64_t);
		uint64_t *big = new uint64_t[n];
		char *small = new char[1000];
		for (size_t i = 0; i < n; i++)
			big[i] = i * 0x9e3779b97f4a7c15ull;
		CHECK(spilled(big, n * sizeof *big), "new uint64_t[%zu] at %p is not spilled", n, (void *)big);
		CHECK(!spilled(small, 1000), "new char[1000] at %p is spilled", (void *)small);
		size_t bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += big[i] != i * 0x9e3779b97f4a7c15ull;
		CHECK(bad == 0, "new[] array: %zu wrong elements", bad);
		std::printf("new uint64_t[%zu] at %p: %s\n", n, (void *)big, spilled(big, 1) ? "spilled" : "ram");
		delete[] big;
		delete[] small;
	}
	// An array of objects with a destructor: new[] stores the count in front of the elements.
	{
		struct obj { double v[4]; ~obj() { v[0] = -1; } };
		size_t n = 2 * M / sizeof(obj);
		obj *a = new obj[n];
		for (size_t i = 0; i < n; i++)
			a[i].v[0] = a[i].v[3] = (double)i;
		CHECK(spilled(a, n * sizeof *a), "new obj[%zu] at %p is not spilled", n, (void *)a);
		size_t bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += a[i].v[0] != (double)i || a[i].v[3] != (double)i;
		CHECK(bad == 0, "new obj[]: %zu wrong elements", bad);
		delete[] a;
	}
	// std::vector<double> grows by push_back from nothing to 3M elements (24 MiB),
	// crossing the 1M threshold on the way; every reallocation keeps the content.
	{
		std::vector<double> v;
		size_t crossings = 0, n = 3 * M;
		const double *last = nullptr;
		for (size_t i = 0; i < n; i++) {
			v.push_back((double)i * 0.5);
			if (v.data() != last) {
				last = v.data();
				bool sp = spilled(v.data(), v.capacity() * sizeof(double));
				bool want = v.capacity() * sizeof(double) >= M;
				CHECK(sp == want, "vector capacity %zu (%zu bytes) at %p: %s", v.capacity(),
				      v.capacity() * sizeof(double), (const void *)v.data(), sp ? "spilled" : "not spilled");
				crossings += sp;
				size_t bad = 0;
				for (size_t j = 0; j <= i; j++)
					bad += v[j] != (double)j * 0.5;
				CHECK(bad == 0, "after growth to capacity %zu: %zu wrong elements", v.capacity(), bad);
			}
		}
		CHECK(crossings > 0, "the vector never spilled");
		double sum = 0;
		for (double x : v)
			sum += x;
		double want = 0.5 * (double)n * (double)(n - 1) / 2;
		CHECK(sum == want, "sum %.1f, want %.1f", sum, want);
		std::printf("vector<double> of %zu: capacity %zu, %zu spilled buffers, sum %.1f\n", v.size(),
			    v.capacity(), crossings, sum);
		v.resize(10);
		v.shrink_to_fit();
		CHECK(!spilled(v.data(), 10 * sizeof(double)), "shrunk vector is still spilled");
	}
	// A unique_ptr<int[]> of 16 MiB, value-initialised: zero.
	{
		size_t n = 4 * M;
		std::unique_ptr<int[]> z(new int[n]());
		size_t nz = 0;
		for (size_t i = 0; i < n; i++)
			nz += z[i] != 0;
		CHECK(nz == 0, "new int[%zu]() has %zu non-zero elements", n, nz);
		CHECK(spilled(z.get(), n * sizeof(int)), "new int[%zu]() is not spilled", n);
	}
	CHECK(spill_maps(nullptr, nullptr) == 1, "spill mapping count %d, want 1", spill_maps(nullptr, nullptr));
	std::printf("cxx_vector: %s\n", fails ? "FAILED" : "ok");
	return fails ? 1 : 0;
}
