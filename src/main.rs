fn main() {
    println!("custos");
}
