//! Brands and products: Zipf-like brand popularity, many products without a
//! brand, almost none with a category_code, small prices with a few ‰ ≤ 0.

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The biggest brands of the real data, then made-up names.
const KNOWN_BRANDS: [&str; 24] = [
    "runail",
    "irisk",
    "grattol",
    "masura",
    "estel",
    "ingarden",
    "jessnail",
    "kapous",
    "uno",
    "bpw.style",
    "lianail",
    "freedecor",
    "cnd",
    "concept",
    "italwax",
    "domix",
    "strong",
    "shik",
    "kinetics",
    "pnb",
    "haruyama",
    "artex",
    "marathon",
    "beautix",
];
pub const BRAND_COUNT: usize = 240;
const PRODUCT_COUNT: usize = 45_000;
const CATEGORY_CODES: [&str; 8] = [
    "appliances.environment.vacuum",
    "furniture.bathroom.bath",
    "apparel.glove",
    "furniture.living_room.cabinet",
    "accessories.bag",
    "appliances.personal.hair_cutter",
    "stationery.cartrige",
    "furniture.bathroom.toilet",
];

#[derive(Debug, Clone)]
pub struct Product {
    pub id: u64,
    pub category_id: u64,
    pub category_code: Option<&'static str>,
    pub brand: Option<u16>,
    pub price: f64,
}

/// The brands and products the events are drawn from; the same for the same seed.
pub struct Catalog {
    /// Brand names, lower case, the biggest real brands first; `Product::brand` indexes them.
    pub brands: Vec<String>,
    /// Share of all events that go to each brand's products (for planting anomalies).
    pub brand_share: Vec<f64>,
    /// Every product (45,000), with its id, category, brand and price.
    pub products: Vec<Product>,
    popularity: WeightedIndex<f64>,
}

fn made_up_brand(i: usize, rng: &mut StdRng) -> String {
    const SYLLABLES: [&str; 16] =
        ["ka", "ro", "mi", "ne", "lu", "sa", "ti", "vo", "be", "da", "li", "on", "ar", "el", "is", "us"];
    let n = rng.random_range(2..4);
    let mut name: String = (0..n).map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())]).collect();
    name.push_str(&format!("{}", i % 10));
    name
}

impl Catalog {
    /// The catalog of `seed`; it does not depend on the number of rows or days.
    pub fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0CA7_A106);
        let brands: Vec<String> = (0..BRAND_COUNT)
            .map(|i| KNOWN_BRANDS.get(i).map(|s| s.to_string()).unwrap_or_else(|| made_up_brand(i, &mut rng)))
            .collect();
        let category_ids: Vec<u64> =
            (0..500).map(|_| 1_487_580_004_000_000_000 + rng.random_range(0..800_000_000_000_000u64)).collect();
        let mut brand_weight = vec![0.0; BRAND_COUNT];
        let mut products = Vec::with_capacity(PRODUCT_COUNT);
        let mut weights = Vec::with_capacity(PRODUCT_COUNT);
        for p in 0..PRODUCT_COUNT {
            // Zipf over brands; about 4 in 10 products have no brand.
            let brand = (rng.random::<f64>() >= 0.40).then(|| zipf_index(&mut rng, BRAND_COUNT, 1.55) as u16);
            let weight = 1.0 / ((p % 9_000) as f64 + 20.0).powf(0.9);
            let price = if rng.random::<f64>() < 0.004 {
                // A few per mille non-positive prices, as in the real data.
                if rng.random::<bool>() { 0.0 } else { -rng.random_range(0.01..5.0f64) }
            } else {
                (rng.random_range(0.0..1.0f64).powf(2.2) * 60.0 + 0.5).min(300.0)
            };
            products.push(Product {
                id: 3_752 + (p as u64) * 131 + rng.random_range(0..131),
                category_id: category_ids[zipf_index(&mut rng, category_ids.len(), 1.1)],
                category_code: (rng.random::<f64>() < 0.02)
                    .then(|| CATEGORY_CODES[rng.random_range(0..CATEGORY_CODES.len())]),
                brand,
                price: (price * 100.0f64).round() / 100.0,
            });
            if let Some(b) = brand {
                brand_weight[b as usize] += weight;
            }
            weights.push(weight);
        }
        let total: f64 = weights.iter().sum();
        let brand_share = brand_weight.iter().map(|w| w / total).collect();
        Self { brands, brand_share, products, popularity: WeightedIndex::new(weights).expect("positive weights") }
    }

    /// Index of a product, drawn by popularity.
    pub fn sample_product(&self, rng: &mut StdRng) -> usize {
        self.popularity.sample(rng)
    }
}

/// Index in `0..n` with P(i) ∝ 1/(i+1)^s, by inversion of the continuous approximation.
fn zipf_index(rng: &mut StdRng, n: usize, s: f64) -> usize {
    let u: f64 = rng.random();
    let max = (n as f64 + 1.0).powf(1.0 - s);
    let x = (1.0 + u * (max - 1.0)).powf(1.0 / (1.0 - s));
    ((x - 1.0).floor() as usize).min(n - 1)
}
